import json
import logging

from service.config import Settings
from service.logs import configure_logging


def test_json_logs_carry_the_job_id(capsys):
    configure_logging(Settings(log_format="json", log_level="info"))
    try:
        logging.getLogger("service.jobs.runner").info("claimed job %s", "abc",
                                                      extra={"job_id": "abc"})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("x").exception("failed")
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        configure_logging(Settings(log_format="text", log_level="warning"))
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "claimed job abc" and first["job_id"] == "abc"
    assert first["level"] == "info" and first["logger"] == "service.jobs.runner"
    assert first["time"].endswith("Z") and isinstance(first["pid"], int)
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]


def test_text_logs_by_default(capsys):
    configure_logging(Settings(log_level="info"))
    try:
        logging.getLogger("service").info("hello")
        line = capsys.readouterr().err.strip()
    finally:
        configure_logging(Settings(log_level="warning"))
    assert line.endswith("service: hello") and not line.startswith("{")
