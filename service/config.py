"""Settings: every option of the service, read from DROPNET_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """dropnet's configuration. Each field is the environment variable DROPNET_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="DROPNET_", extra="ignore",
                                      validate_default=True)

    # Where things are
    database_url: str = Field("sqlite:///./dropnet.db",
                              description="SQLAlchemy URL; sqlite:///path or "
                                          "postgresql+psycopg://user@host/db")
    host: str = Field("127.0.0.1", description="Address the API listens on")
    port: int = Field(8000, ge=0, le=65535, description="Port the API listens on")

    # Who trains
    executor: Literal["local", "celery"] = Field(
        "local", description="local: worker processes beside the API; celery: Celery workers")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0, le=256,
                         description="Local training worker processes (0: API only)")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker URL")
    blas_threads: int | None = Field(
        None, ge=1, le=256,
        description="BLAS threads per worker process (default: cores / workers, at least 1)")

    # Job execution
    lease_seconds: float = Field(30.0, gt=0, le=3600,
                                 description="A running job's lease; renewed at every heartbeat")
    heartbeat_seconds: float = Field(1.0, gt=0, le=600,
                                     description="How often a worker flushes metrics, renews "
                                                 "its lease and checks for cancellation")
    max_attempts: int = Field(5, ge=1, le=100,
                              description="Lost attempts (worker died) before a job fails")
    checkpoint_every_iterations: int = Field(
        1000, ge=1, description="Default checkpoint interval in iterations (per job: "
                                "training.checkpoint.every_iterations)")
    checkpoint_every_seconds: float = Field(
        30.0, gt=0, description="Default checkpoint interval in seconds (per job: "
                                "training.checkpoint.every_seconds)")
    poll_seconds: float = Field(2.0, gt=0, le=60,
                                description="How often idle workers look for queued jobs and "
                                            "expired leases when no doorbell rings")
    celery_task_time_limit: float = Field(
        24 * 3600.0, gt=0, description="Hard time limit of one Celery task, in seconds")

    # Limits
    max_body_bytes: int = Field(16 * MiB, ge=1024, description="Largest JSON request body")
    max_upload_bytes: int = Field(64 * MiB, ge=1024, description="Largest dataset upload")
    max_layers: int = Field(64, ge=1, description="Most layers in a job's network")
    max_parameters: int = Field(20_000_000, ge=1, description="Most trainable parameters")
    max_iterations: int = Field(1_000_000, ge=1, description="Most training iterations per job")
    max_batch_size: int = Field(8192, ge=1, description="Largest training batch")
    max_eval_rows: int = Field(500_000_000, ge=1,
                               description="Most rows evaluated over a job: (train + test rows) "
                                           "x number of evaluations")
    max_dataset_rows: int = Field(1_000_000, ge=1, description="Most rows in an uploaded dataset")
    max_dataset_features: int = Field(100_000, ge=1,
                                      description="Most features per row in an uploaded dataset")
    max_image_files: int = Field(100_000, ge=1,
                                 description="Most files in an uploaded zip of image folders")
    max_image_archive_bytes: int = Field(
        256 * MiB, ge=1024,
        description="Most bytes the files of an image-folder zip hold uncompressed")
    max_image_pixels: int = Field(16_777_216, ge=1,
                                  description="Most pixels (width x height) of one uploaded image")
    max_image_decoded_bytes: int = Field(
        512 * MiB, ge=1024,
        description="Most bytes an image-folder upload decodes to (float32 samples)")
    max_predict_rows: int = Field(10_000, ge=1, description="Most rows in one predict request")
    max_mc_forwards: int = Field(1_000_000, ge=1, description="Most rows x mc_samples in one "
                                                              "MC-dropout predict request")
    max_queued_jobs_per_owner: int = Field(1000, ge=1,
                                           description="Queued and running jobs per owner "
                                                       "before submissions get 429")
    max_sweep_runs: int = Field(256, ge=1, description="Most runs (jobs) one sweep generates")
    page_limit_max: int = Field(10_000, ge=1, description="Largest page of any list")
    model_cache_bytes: int = Field(512 * MiB, ge=0,
                                   description="Memory budget of the API's model cache (LRU)")
    model_cache_revalidate_seconds: float = Field(
        10.0, ge=0, description="Seconds a cached model serves predictions before the database "
                                "is asked again whether its job still exists (another API "
                                "process may have deleted it); 0: on every request")
    serving_blas_threads: int = Field(
        1, ge=1, le=256,
        description="BLAS threads in the API process, which predicts in its thread pool: "
                    "requests run side by side, so one thread each is fastest")

    # Live events (GET /v1/jobs/{id}/events, /v1/sweeps/{id}/events)
    events_keepalive_seconds: float = Field(
        15.0, gt=0, le=3600, description="Seconds between keep-alive comments on an event "
                                         "stream, so that proxies keep an idle stream open")
    events_max_streams: int = Field(1000, ge=1, description="Most event streams open at once "
                                                            "in one API process (503 beyond)")
    events_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="How often an API process asks SQLite whether the jobs "
                                      "its streams follow changed (PostgreSQL notifies instead)")
    events_max_points_per_event: int = Field(
        10_000, ge=1, description="Most metric points in one `metrics` event (a longer backlog "
                                  "goes out as several, cut between steps)")

    # Webhooks
    webhook_secret: str = Field("", description="Signing secret (whsec_ + base64) for owners "
                                                "without their own (`dropnet keys secret`)")
    webhook_allowed_hosts: str = Field(
        "", description="Comma-separated hosts a webhook URL may name even though they resolve "
                        "to loopback, private or other non-public addresses")
    webhook_max_attempts: int = Field(8, ge=1, le=100,
                                      description="Attempts per delivery before it fails")
    webhook_backoff_seconds: float = Field(
        10.0, gt=0, le=86400, description="Delay before the first retry; doubled each retry, "
                                          "with jitter")
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, le=7 * 86400,
                                               description="Longest delay between retries")
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Longest one delivery attempt may take, from connect "
                                        "to the last byte of the answer")
    webhook_max_response_bytes: int = Field(65536, ge=0, le=16 * MiB,
                                            description="Most bytes read of a receiver's answer")
    webhook_poll_seconds: float = Field(1.0, gt=0, le=60,
                                        description="How often the sender looks for due "
                                                    "deliveries")
    webhook_concurrency: int = Field(4, ge=1, le=64,
                                     description="Deliveries one API process sends at once")

    # Security and operations
    api_keys: str = Field("", description="Comma-separated API keys, as owner:key or key "
                                          "(empty: open service, unless keys are in the table)")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info",
                                                                    description="Log level")
    log_format: Literal["text", "json"] = Field(
        "text", description="text, or json: one object per line with the job id")
    dashboard: bool = Field(True, description="Serve the dashboard pages at / (false: the API "
                                              "only)")
    sqlite_busy_timeout_seconds: float = Field(30.0, gt=0,
                                               description="How long SQLite waits for a lock")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("expected a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str) -> str:
        if value and not value.startswith("whsec_"):
            raise ValueError("expected whsec_ followed by base64 (`dropnet keys secret` "
                             "prints one), or empty")
        return value

    @property
    def webhook_lease_seconds(self) -> float:
        """How long a sender holds a delivery: longer than any attempt may take."""
        return 2 * self.webhook_timeout_seconds + 1.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def celery_visibility_timeout(self) -> float:
        """The broker's redelivery timeout: longer than any task may run, so a task that is
        still running is never delivered twice by the broker."""
        return self.celery_task_time_limit + 3600.0

    def effective_blas_threads(self, processes: int | None = None) -> int:
        """BLAS threads per worker process: `blas_threads`, or the cores shared among
        `processes` worker processes (default: `workers`), at least 1."""
        if self.blas_threads is not None:
            return self.blas_threads
        count = self.workers if processes is None else processes
        return max(1, (os.cpu_count() or 1) // max(1, count))

    def static_api_keys(self) -> dict[str, str]:
        """{key: owner} from `api_keys`; an entry without an owner is its own owner name."""
        keys: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in self.api_keys.split(","))):
            owner, sep, key = entry.partition(":")
            keys[key if sep else owner] = owner if sep else f"key-{entry[:6]}"
        return keys


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
