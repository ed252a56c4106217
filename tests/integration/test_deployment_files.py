"""The Dockerfile and docker-compose.test.yml, checked offline (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer.main
from ruamel.yaml import YAML

from broadcast_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.test.yml"
DOCKERFILE = ROOT / "Dockerfile"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return data


def test_the_compose_file_follows_the_compose_specification() -> None:
    checker = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_build_target_and_copied_path_exists() -> None:
    dockerfile = DOCKERFILE.read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.MULTILINE))
    for name, service in compose()["services"].items():
        if "build" in service:
            assert service["build"]["target"] in stages, name
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for source in line.split():
            assert (ROOT / source).exists(), source


def test_the_runner_uses_real_options_of_broadcast_bench() -> None:
    command = compose()["services"]["tests"]["command"]
    assert command[:2] == ["broadcast", "bench"]
    bench = typer.main.get_command(app).commands["bench"]  # type: ignore[attr-defined]
    known = {opt for param in bench.params for opt in param.opts}
    used = {arg for arg in command[2:] if arg.startswith("--")}
    assert used <= known, used - known
    urls = [command[i + 1] for i, arg in enumerate(command) if arg == "--url"]
    assert urls == ["ws://broadcast-1:8000/ws/broadcast", "ws://broadcast-2:8000/ws/broadcast"]


def test_servers_on_every_address_have_an_api_key() -> None:
    """The image listens on 0.0.0.0, where the server refuses to start without a key (or --insecure)."""
    assert "BROADCAST_HOST=0.0.0.0" in DOCKERFILE.read_text()
    for name in ("broadcast-1", "broadcast-2", "tests"):
        assert compose()["services"][name]["environment"]["BROADCAST_API_KEY"], name
