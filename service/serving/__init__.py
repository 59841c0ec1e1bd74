"""Serving trained models: loading and caching them, checking inputs, predicting."""
