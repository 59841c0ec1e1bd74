"""dropnet's NumPy engine: dropout networks, their training loop and their files.

Imports numpy and the standard library only; usable without the service:

    from service.engine import build_network, load_builtin, TrainingConfig, train
"""

from .checkpoint import load_model, save_model
from .datasets import BUILTIN_DATASETS, Dataset, load_builtin
from .errors import NonFiniteLossError, SpecError, TrainingError
from .network import Network, build_network
from .training import MetricRecord, Trainer, TrainingConfig, train

__all__ = [
    "BUILTIN_DATASETS",
    "Dataset",
    "MetricRecord",
    "Network",
    "NonFiniteLossError",
    "SpecError",
    "Trainer",
    "TrainingConfig",
    "TrainingError",
    "build_network",
    "load_builtin",
    "load_model",
    "save_model",
    "train",
]
