"""Bytes for what outlives a process: training checkpoints and model files.

Both are .npz archives of plain arrays plus one JSON document stored as a uint8 array under
the name "__meta__"; they load with allow_pickle=False, so reading one never runs code.
"""

from __future__ import annotations

import io
import json
from typing import Any, cast

import numpy as np

from .network import Network, build_network
from .npz import load_npz

META_KEY = "__meta__"
MODEL_FORMAT = "dropnet.model"
CHECKPOINT_FORMAT = "dropnet.checkpoint"
FORMAT_VERSION = 1


class CorruptFileError(ValueError):
    """The bytes are not a dropnet model or checkpoint of a supported version."""


def pack(meta: dict[str, Any], arrays: dict[str, np.ndarray], *, compress: bool = False) -> bytes:
    """One .npz holding `arrays` and `meta` (JSON)."""
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved")
    buffer = io.BytesIO()
    encoded = np.frombuffer(json.dumps(meta, separators=(",", ":")).encode(), dtype=np.uint8)
    # np.savez's stubs type **kwds as its allow_pickle flag; the members are arrays.
    save = cast(Any, np.savez_compressed if compress else np.savez)
    save(buffer, **{META_KEY: encoded, **arrays})
    return buffer.getvalue()


def unpack(data: bytes, *, expected_format: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) from pack()'s bytes; CorruptFileError if they are anything else."""
    try:
        arrays = load_npz(data)
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    except (OSError, ValueError, KeyError) as error:
        raise CorruptFileError(f"not a {expected_format} file: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        received = meta.get("format") if isinstance(meta, dict) else meta
        raise CorruptFileError(f"expected format {expected_format!r}, received {received!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise CorruptFileError(f"expected version {FORMAT_VERSION}, "
                               f"received {meta.get('version')!r}")
    return meta, arrays


def save_model(network: Network, *, metadata: dict[str, Any] | None = None) -> bytes:
    """The network's weights, architecture JSON and current dropout rates (a schedule's
    last values, which MC dropout samples at) as one compressed .npz."""
    meta = {"format": MODEL_FORMAT, "version": FORMAT_VERSION,
            "architecture": network.architecture(), "metadata": metadata or {},
            "dropout_rates": [layer.rate for layer in network.dropout_layers]}
    return pack(meta, network.state_dict(), compress=True)


def load_model(data: bytes) -> tuple[Network, dict[str, Any]]:
    """(network, metadata) from save_model()'s bytes."""
    meta, arrays = unpack(data, expected_format=MODEL_FORMAT)
    architecture = meta["architecture"]
    network = build_network(architecture["layers"], architecture["input_shape"], seed=0,
                            dtype=architecture["dtype"])
    network.load_state_dict(arrays)
    if "dropout_rates" in meta:  # files written before the rates were kept have base rates
        network.set_dropout_rates(meta["dropout_rates"])
    return network, meta.get("metadata", {})
