"""Settings derived values."""

import pytest

from service import config
from service.config import Settings


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "cpu_count", lambda: 8)
    monkeypatch.delenv("DROPNET_BLAS_THREADS", raising=False)


def test_blas_threads_share_the_cores_among_the_worker_processes(eight_cores):
    settings = Settings(workers=2, _env_file=None)
    assert settings.effective_blas_threads() == 4, "default: among `workers` processes"
    assert settings.effective_blas_threads(3) == 2, "dropnet worker --concurrency 3"
    assert settings.effective_blas_threads(16) == 1, "never fewer than one"
    assert Settings(workers=0, _env_file=None).effective_blas_threads() == 8


def test_explicit_blas_threads_win(eight_cores):
    assert Settings(workers=2, blas_threads=3, _env_file=None).effective_blas_threads(8) == 3
