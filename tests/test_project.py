"""The project's own promises: README commands and example, packaging, deployment files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_a_quick_start_of_two_commands():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick_start, re.S).group(1)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("dropnet serve")
    assert commands[1].endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci  # CI runs exactly the README's test command


def test_readme_configuration_table_lists_every_setting():
    documented = set(re.findall(r"\| `(DROPNET_[A-Z_]+)` \|", README))
    expected = {f"DROPNET_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_readme_engine_example_runs(tmp_path):
    section = README.split("## Using the engine as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("test accuracy")[1])
    assert accuracy > 0.9


def test_every_package_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts)
             for path in (ROOT / "service").rglob("__init__.py")}
    found |= {"service._migrations" + "".join(
        "." + part for part in path.parent.relative_to(ROOT / "migrations").parts)
        for path in (ROOT / "migrations").rglob("__init__.py")}
    assert listed == found


def test_the_container_starts_what_the_tests_start():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r'^CMD (\[.*\])$', dockerfile, re.M).group(1)
    assert yaml.safe_load(cmd) == ["dropnet", "serve"]
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.M), "non-root user"
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["api"]["command"] == ["dropnet", "serve"]
    assert services["worker"]["command"][:2] == ["dropnet", "worker"]
    assert services["migrate"]["command"] == ["dropnet", "migrate"]
    assert "profiles" not in services["api"]
    assert all(services[name]["profiles"] == ["scale"]
               for name in ("postgres", "redis", "migrate", "worker"))
    e2e = (ROOT / "tests" / "e2e" / "conftest.py").read_text()
    assert '"dropnet")' in e2e and 'start(["serve"' in e2e
