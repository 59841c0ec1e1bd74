"""dropnet: a training service for dropout neural networks."""

__version__ = "0.1.0"
