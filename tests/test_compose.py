"""The deployable stack, checked without a Docker engine: docker-compose.yml as a real compose
implementation resolves it (`docker-compose config`), the Dockerfile's stages, and the promise
that lets the API image leave torch out (the API never imports an engine)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA_MOUNT = "/opt/hustmedia/python/tts/wav2vec2"
COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose is not installed (`make test` installs Debian's docker-compose)",
)


def compose(*args: str, password: str | None = "s3cret") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STT_", "POST"))}
    if password is not None:
        env["POSTGRES_PASSWORD"] = password
    return subprocess.run(
        [COMPOSE or "docker-compose", "-f", str(ROOT / "docker-compose.yml"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def services() -> dict:
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (`make test` installs it)")
    result = compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def conditions(service: dict) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in service["depends_on"].items()}


@needs_compose
def test_stack_has_its_services_with_healthchecks(services):
    assert {"redis", "postgres", "migrate", "api", "worker-gpu0", "worker-cpu"} <= set(services)
    for name in ("redis", "postgres", "api", "worker-gpu0", "worker-cpu"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    assert "noeviction" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("noeviction") - 1] == (
        "--maxmemory-policy"
    )
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert "profiles" not in services["worker-gpu0"]


@needs_compose
def test_migrations_run_before_the_api_and_workers_start(services):
    assert services["migrate"]["command"] == ["stt", "migrate"]
    assert conditions(services["migrate"]) == {"postgres": "service_healthy"}
    for name in ("api", "worker-gpu0", "worker-cpu"):
        assert conditions(services[name]) == {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
        }, name


@needs_compose
def test_gpu_worker_reserves_and_pins_one_device(services):
    worker = services["worker-gpu0"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["device_ids"] == ["0"]
    assert device["driver"] == "nvidia"
    assert worker["environment"]["STT_DEVICE"] == "cuda:0"
    assert worker["build"]["target"] == "worker" and services["api"]["build"]["target"] == "api"
    assert services["worker-cpu"]["environment"]["STT_DEVICE"] == "cpu"
    assert "deploy" not in services["worker-cpu"]


@needs_compose
def test_production_settings_are_explicit_and_shared(services):
    for name in ("migrate", "api", "worker-gpu0", "worker-cpu"):
        env = services[name]["environment"]
        assert env["STT_MODEL"], name  # set explicitly: never a silent fallback model
        assert env["STT_DATABASE_URL"] == "postgresql+psycopg://stt:s3cret@postgres:5432/stt"
        assert env["STT_BROKER_URL"].startswith("redis://redis:6379/")
        assert env["STT_DATA_DIR"] == DATA_MOUNT
    for name in ("api", "worker-gpu0", "worker-cpu"):
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts[DATA_MOUNT] == "stt-data", name
    for name in ("worker-gpu0", "worker-cpu"):
        env, volumes = services[name]["environment"], services[name]["volumes"]
        assert any(env["HF_HOME"].startswith(v.split(":")[1]) for v in volumes), name
        assert env["STT_WORKER_METRICS_HOST"] == "0.0.0.0"


@needs_compose
def test_stack_refuses_to_start_without_a_database_password():
    result = compose("config", password=None)
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def test_dockerfile_builds_a_cuda_worker_and_a_torch_free_api():
    text = (ROOT / "Dockerfile").read_text()
    stages = {name: image for image, name in re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)$", text, re.M)}
    assert set(stages) == {"api", "worker"}
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)$", text, re.MULTILINE))
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    cuda = r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+"
    assert re.fullmatch(cuda, args["CUDA_IMAGE"])
    assert args["TORCH_VERSION"] == "2.13.0"
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu12\d", args["TORCH_INDEX_URL"])
    api_stage = text.split("AS api", 1)[1].split("AS worker", 1)[0]
    assert "torch==" not in api_stage and "'torch'" in api_stage  # filtered out, never installed
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git", "tests"} <= set(ignored)


def test_api_never_imports_an_engine(tmp_path):
    """What lets the API image leave torch and the engines out (see the Dockerfile)."""
    engines = ["torch", "transformers", "faster_whisper", "ctranslate2", "onnxruntime",
               "silero_vad", "pyctcdecode"]
    code = (
        "import sys\n"
        "from api.app import create_app\n"
        "create_app()\n"
        f"print(','.join(m for m in {engines!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "STT_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
