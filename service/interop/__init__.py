"""Interoperability: Keras model configs in (keras.py), ONNX models out (onnx.py)."""
