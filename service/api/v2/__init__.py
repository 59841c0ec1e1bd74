"""The Open Inference Protocol (KServe V2 / Triton HTTP): a trained job served as a model.

The model's name is the job's id and its one version is "1"; the routes call the same serving
functions as `POST /v1/jobs/{id}/predict` (model cache, input checks, MC dropout).
"""
