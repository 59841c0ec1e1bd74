import io
import zipfile

import numpy as np
import pytest

from service.engine.checkpoint import CorruptFileError, load_model, pack, save_model, unpack
from service.engine.network import build_network

LAYERS = [{"type": "conv2d", "filters": 3, "kernel_size": 3, "activation": "relu"},
          {"type": "flatten"}, {"type": "dropout", "rate": 0.3},
          {"type": "dense", "units": 4, "activation": "softmax", "max_norm": 3.0}]


def test_model_file_round_trip_predicts_the_same():
    net = build_network(LAYERS, (1, 6, 6), seed=5)
    data = save_model(net, metadata={"classes": 4})
    again, metadata = load_model(data)
    assert metadata == {"classes": 4}
    assert again.architecture() == net.architecture()
    x = np.random.default_rng(0).standard_normal((7, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(again.predict_proba(x), net.predict_proba(x))


def test_model_file_is_an_npz_with_architecture_json():
    data = save_model(build_network(LAYERS, (1, 6, 6), seed=0))
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        assert "layers.0.weight" in archive.files
        assert archive["layers.0.weight"].shape == (3, 1, 3, 3)
        assert b'"architecture"' in archive["__meta__"].tobytes()


def test_pickled_object_arrays_are_refused():
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(b'{"format":"dropnet.model","version":1}', np.uint8),
             evil=np.array([object()], dtype=object))
    with pytest.raises(CorruptFileError, match=r"not a dropnet\.model"):
        load_model(buffer.getvalue())


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_garbage_is_refused(data):
    with pytest.raises(CorruptFileError):
        load_model(data)


def test_wrong_format_or_version_is_refused():
    with pytest.raises(CorruptFileError, match="expected format"):
        unpack(pack({"format": "other", "version": 1}, {}), expected_format="dropnet.model")
    with pytest.raises(CorruptFileError, match="version"):
        unpack(pack({"format": "dropnet.model", "version": 99}, {}),
               expected_format="dropnet.model")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY")
    with pytest.raises(CorruptFileError):
        load_model(buffer.getvalue())
