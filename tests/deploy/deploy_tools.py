"""Helpers of the deployment tests: the repository's paths, and the real tools they drive.

A tool that is missing skips its test on a developer's machine, with the command that installs it;
in CI (`CI` set) it fails the test instead, since `.ci/run` installs every one of them
(`deploy/install-tools.sh`) and a skipped check there would pass for a checked one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from service_fixtures import missing_tool

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "bash deploy/install-tools.sh"


def tool(name: str, hint: str = INSTALL_HINT) -> str:
    """Path of a command: the test venv's bin first (pip-installed tools), then the repo's tool venvs
    (.tools/<name>, for tools whose pins clash with ours), then PATH."""
    for candidate in (Path(sys.executable).parent / name, REPO / ".tools" / name / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing_tool(name, hint)
        raise AssertionError("unreachable")  # missing_tool() skips or fails
    return found


def run(*args: str, timeout: float = 300, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, text output; on failure the assertion shows its output."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    result: subprocess.CompletedProcess[str] = proc
    return result


def load_yaml_docs(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180.0) -> None:
    """Poll `url` until it answers 200; fail early, with the log's tail, if `proc` exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} not 200 in {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-4000:]}"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
