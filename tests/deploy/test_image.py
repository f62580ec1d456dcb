"""The container image: hadolint on the Dockerfile, then a real build of the `service` target, run.

No Docker daemon and no registry but PyPI and Debian are reachable here, so the image is built the
way this machine allows (run alone with `pytest -m image`):

1. a Debian 12 root with python3 (3.11) and its venv module, made by `debootstrap --variant=minbase`
   and turned into a local image by `podman import`; passed as the BASE_IMAGE build argument in
   place of the official slim image. Kept between runs on a developer's machine; CI makes it anew.
2. `buildah bud --isolation chroot --network host --target service`, with the machine's CA bundle
   (the file PIP_CERT names, where set) mounted over the image's so pip inside the build reaches PyPI.
3. the image's own command (`reward-service serve --host 0.0.0.0`) run by `buildah run --isolation
   chroot --network host`, as the image's user; `/readyz` and one scoring request from outside on
   127.0.0.1. (`podman run` cannot start containers in this sandbox: crun fails to set RLIMIT_NPROC.)

Containers and images the test made are removed at the end (the cached base image excepted).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy_tools import REPO, run, stop, tool, wait_http_ok
from service_fixtures import GOOD, MC_REF, free_port

BASE_IMAGE = "localhost/reward-service-test-base:bookworm"
SUITE = "bookworm"


def test_hadolint_reports_nothing() -> None:
    proc = run(tool("hadolint"), "--no-color", str(REPO / "Dockerfile"), check=False)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_dockerfile_targets_and_context() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11" in text and "-slim" in text.split("ARG BASE_IMAGE=", 1)[1].split("\n")[0]
    assert "FROM ${BASE_IMAGE} AS service\n" in text and "FROM ${CUDA_IMAGE} AS trainer\n" in text
    trainer = text.split("AS trainer\n", 1)[1]
    assert "requirements.py trainer vllm" in trainer and 'ENTRYPOINT ["grpo-train"]' in trainer
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[next(i for i, line in enumerate(ignore) if not line.startswith("#"))] == "*", "allow-list context"


def _image_exists(podman: str, name: str) -> bool:
    return subprocess.run([podman, "image", "exists", name], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def base_image() -> Iterator[str]:
    """A local Debian 12 image with python3 and venv (what the official slim image would give)."""
    podman, debootstrap = tool("podman", "apt-get install podman"), tool("debootstrap", "apt-get install debootstrap")
    if os.geteuid() != 0:
        pytest.skip("debootstrap and buildah's chroot isolation need root")
    fresh = bool(os.environ.get("CI"))
    if fresh or not _image_exists(podman, BASE_IMAGE):
        run(podman, "rmi", "--force", BASE_IMAGE, check=False)  # else the old one lingers, untagged
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            root = Path(tmp) / "root"
            run(debootstrap, "--variant=minbase", "--include=python3,python3-venv,ca-certificates", SUITE, str(root),
                timeout=900)
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            run(podman, "import", "-", BASE_IMAGE, stdin=tar.stdout, timeout=300)
            assert tar.wait() == 0
    yield BASE_IMAGE
    if fresh:
        run(podman, "rmi", "--force", BASE_IMAGE, check=False)


@pytest.fixture(scope="module")
def service_image(base_image: str) -> Iterator[str]:
    buildah = tool("buildah", "apt-get install buildah")
    tag = f"localhost/reward-service-test:{uuid.uuid4().hex[:12]}"
    args = ["bud", "--isolation", "chroot", "--network", "host", "--format", "docker", "--target", "service",
            "--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", "REVISION=test", "-t", tag]
    cert = os.environ.get("PIP_CERT")
    if cert and Path(cert).is_file():
        args += ["-v", f"{cert}:/etc/ssl/certs/ca-certificates.crt:ro"]
    before = set(run(buildah, "images", "--all", "--quiet", "--no-trunc").stdout.split())
    try:
        run(buildah, *args, str(REPO), timeout=1200)
        yield tag
    finally:
        run(buildah, "rmi", "--force", tag, check=False)
        made = set(run(buildah, "images", "--all", "--quiet", "--no-trunc").stdout.split()) - before
        if made:  # the build stages' intermediate images, if any were kept
            run(buildah, "rmi", "--force", *made, check=False)


def inspect(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(tool("buildah"), "inspect", "--type", "image", image).stdout)
    return data


@pytest.mark.image
@pytest.mark.slow
def test_image_config(service_image: str) -> None:
    data = inspect(service_image)
    config = data["Docker"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["reward-service", "serve", "--host", "0.0.0.0"] and not config.get("Entrypoint")
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["NUMBA_CACHE_DIR"] == "/var/cache/numba" and env["PATH"].startswith("/opt/venv/bin")
    labels = config["Labels"]
    for key in ("title", "version", "revision", "licenses", "created"):
        assert f"org.opencontainers.image.{key}" in labels
    assert labels["org.opencontainers.image.revision"] == "test"


@pytest.fixture
def container(service_image: str) -> Iterator[str]:
    buildah = tool("buildah")
    name = run(buildah, "from", "--name", f"reward-service-test-{uuid.uuid4().hex[:8]}", service_image).stdout.strip()
    try:
        yield name
    finally:
        run(buildah, "rm", name, check=False)


def in_image(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    return run(tool("buildah"), "run", "--isolation", "chroot", container, "--", *command, check=False)


@pytest.mark.image
@pytest.mark.slow
def test_image_serves_and_scores(service_image: str, container: str, tmp_path: Path) -> None:
    port = free_port()
    command = inspect(service_image)["Docker"]["config"]["Cmd"]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [tool("buildah"), "run", "--isolation", "chroot", "--network", "host",
             "--env", f"REWARD_SERVICE_PORT={port}", "--env", "REWARD_SERVICE_WORKERS=2", container, "--", *command],
            stdout=log, stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", proc, log_path)
        body = {"items": [{"id": "r1", "group_id": "g", "completion": GOOD, "reference": MC_REF}]}
        response = httpx.post(f"{base}/v1/rewards", json=body, timeout=30)
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert (result["status"], result["reward"]) == ("ok", 2.0)
        assert "reward_service_items_total" in httpx.get(f"{base}/metrics", timeout=5).text
        # numba's kernels were compiled at warm-up and cached where the service user may write.
        cached = in_image(container, "sh", "-c", "ls /var/cache/numba | grep -c .").stdout.strip()
        assert cached not in ("", "0"), "numba cache is empty"
        # SIGTERM to the service itself (buildah run would SIGKILL it on its own SIGTERM, where a
        # container runtime signals PID 1): it drains, exits 0, and buildah run with it.
        os.kill(_service_pid(proc.pid), signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log_path.read_text(errors="replace")[-4000:]
    finally:
        stop(proc, timeout_s=5)


def _service_pid(root: int) -> int:
    """The `reward-service serve` process among the descendants of `root` (chroot isolation shares
    the host's PID namespace)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"python3") and argv[1].endswith(b"reward-service") and argv[2] == b"serve":
            return pid
        todo += children.get(pid, [])
    raise AssertionError("no reward-service serve process under buildah run")


@pytest.mark.image
@pytest.mark.slow
def test_image_holds_the_service_install_only(container: str) -> None:
    probe = ("import importlib.util as u, sys; "
             "sys.exit(any(u.find_spec(m) for m in ('torch', 'transformers', 'vllm', 'pytest')))")
    assert in_image(container, "python3", "-c", probe).returncode == 0, "no trainer or dev packages in the image"
    assert in_image(container, "python3", "-c", "import fastapi, uvicorn, redis, reward_service.api").returncode == 0
    compilers = in_image(container, "sh", "-c", "command -v gcc cc g++ clang")
    assert compilers.stdout.strip() == "", compilers.stdout
    writable = in_image(container, "sh", "-c", "touch /opt/venv/x 2>/dev/null && echo writable || echo read-only")
    assert writable.stdout.strip() == "read-only", "the service user must not be able to change its code"
    assert shutil.which("buildah")

