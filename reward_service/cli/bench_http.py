"""`reward-service bench --mode http`: the service's speed through a real socket, against in-process scoring.

It starts `reward-service serve` on 127.0.0.1 as a child process (one worker per core) and measures:

* http_items_per_s_per_core: items scored per second through HTTP (512-item requests, two in flight so
  the service parses one while its workers score the other, cache off), divided by the core count;
* http_ratio: that over the in-process rate of this same run (`bench.measure_inprocess`, one core);
* batch512_p50_ms, batch512_p99_ms: latency of one 512-item request (a GRPO step of 64 prompts x 8
  rollouts) sent alone, cache off;
* cache_hit_items_per_s: items per second when every item of the request is already cached;
* single_item_items_per_s: the same items, one per request (as OpenRLHF posts rollouts), from 64
  concurrent connections, cache off, driven by wrk (Debian's `wrk`: a Python client tops out near 200
  requests per second on 2 cores, far below the service), and single_item_ratio: that over the
  batched rate of this same run (bar: 0.5). Without wrk on the PATH both are null.

Request bodies are encoded before the clock starts: the figures are the service's, not the client's.
Rounds of the different measurements alternate and each keeps its best round: on a shared machine
noise only ever makes a round slower.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

BATCH = 512
PROMPTS, ROLLOUTS = 64, 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log_text: Callable[[], str],
                     timeout_s: float = 120.0, poll_s: float = 0.05) -> None:
    """Poll `/readyz` until it answers 200; a service that exits first is an error showing its log's end."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}:\n{log_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"service not ready in {timeout_s:g} s")
        time.sleep(poll_s)


@contextmanager
def running_service(*args: str, env: dict[str, str] | None = None,
                    ready_timeout_s: float = 120.0) -> Iterator[RunningService]:
    """`python -m reward_service.cli.serve serve --port <free> *args`, yielded once /readyz says 200.

    On exit the service gets SIGTERM (a graceful drain) and, if it does not stop, SIGKILL."""
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), child_env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reward_service.cli.serve", "serve", "--port", str(port), *args],
            env=child_env, stdout=log, stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        service = RunningService(base, proc, log)
        try:
            wait_until_ready(base, proc, service.log_text, ready_timeout_s)
            yield service
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def grpo_body(items: Sequence[dict[str, Any]], index: int, tag: str = "") -> bytes:
    """Request body number `index`: 512 items cycling through `items`, 8 rollouts per group.

    A `tag` is added to every reference (extra reference keys are ignored by the scorer): the work is
    the same, but no reference is one the service has validated before, as in training where every
    step brings new prompts. Without it, repeated bodies would run on warm caches.
    """
    batch = []
    for j in range(BATCH):
        item = items[(index * BATCH + j) % len(items)]
        reference = {**item["reference"], "bench_tag": f"{tag}{index}"} if tag else item["reference"]
        batch.append({"id": f"b{index}-{j}", "group_id": f"b{index}-g{j // ROLLOUTS}",
                      "completion": item["completion"], "reference": reference, "num_tokens": item["num_tokens"]})
    return orjson.dumps({"items": batch})


def grpo_bodies(items: Sequence[dict[str, Any]], count: int, tag: str = "") -> list[bytes]:
    return [grpo_body(items, b, tag) for b in range(count)]


def service_cpu_s(pid: int) -> float:
    """CPU seconds used so far by process `pid` and its descendants (forkserver and workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    return sum(times.get(p, 0.0) for p in family)


class _Client:
    """A minimal keep-alive HTTP/1.1 client (stdlib http.client): the bench runs on the machine it
    measures, and a lighter client leaves more of it to the service than httpx's pure-Python stack."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=120)

    def post(self, body: bytes) -> None:
        self._conn.request("POST", "/v1/rewards", body, {"Content-Type": "application/json"})
        response = self._conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"bench request failed: {response.status} {data[:500]!r}")

    def close(self) -> None:
        self._conn.close()


def throughput(base: str, bodies: Sequence[bytes], concurrency: int = 2) -> float:
    """Items per second over `bodies`, `concurrency` requests in flight."""
    queue = list(bodies)
    lock = threading.Lock()

    def run() -> None:
        client = _Client(base)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                client.post(body)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(bodies) * BATCH / (time.perf_counter() - start)


def latencies_ms(base: str, bodies: Iterable[bytes]) -> list[float]:
    """One request at a time; `bodies` may be a generator (each body is built before its clock starts)."""
    out = []
    client = _Client(base)
    try:
        for body in bodies:
            start = time.perf_counter()
            client.post(body)
            out.append((time.perf_counter() - start) * 1000)
    finally:
        client.close()
    return out


SINGLE_ITEM_CONNECTIONS = 64

# The requests are formatted once, when the script loads: formatting each in `request()` built a new
# 3 KB Lua string per request, CPU that wrk took from the service on the machine it measures.
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local requests = {}
for i = 1, #bodies do
  requests[i] = wrk.format(nil, "%s", nil, bodies[i])
end
local n = 0
request = function()
  n = n %% #requests + 1
  return requests[n]
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def single_item_bodies(items: Sequence[dict[str, Any]], tag: str = "") -> list[bytes]:
    """One request body per item: the standard mix one rollout at a time."""
    return [orjson.dumps({"items": [{"id": f"s{i}", "completion": it["completion"],
                                     "reference": {**it["reference"], "bench_tag": tag} if tag else it["reference"],
                                     "num_tokens": it["num_tokens"]}]})
            for i, it in enumerate(items)]


def wrk_script(bodies: Sequence[bytes], path: str = "/v1/rewards") -> str:
    """A wrk Lua script that posts `bodies` in turn and prints `WRK requests duration_us errors`."""
    lines = ["bodies = {}"]
    for i, body in enumerate(bodies, start=1):
        text = body.decode()
        if "]==]" in text:
            raise ValueError("a body holds the Lua long-string terminator")
        lines.append(f"bodies[{i}] = [==[{text}]==]")
    return "\n".join(lines) + _WRK_SCRIPT % path


def parse_wrk(output: str) -> tuple[int, float, int]:
    """(requests, seconds, errors) from the script's `WRK` line."""
    for line in output.splitlines():
        if line.startswith("WRK "):
            requests, duration_us, errors = (int(x) for x in line.split()[1:4])
            return requests, duration_us / 1e6, errors
    raise RuntimeError(f"no result from wrk:\n{output[-2000:]}")


def run_wrk(base: str, script_path: str, seconds: float = 5.0,
            connections: int = SINGLE_ITEM_CONNECTIONS) -> tuple[int, float]:
    """(requests answered, seconds) from `connections` concurrent keep-alive connections (wrk, one thread);
    a request that failed or was answered other than 2xx is an error."""
    proc = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", script_path, base],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    requests, elapsed, errors = parse_wrk(proc.stdout)
    if errors:
        raise RuntimeError(f"{errors} of {requests} single-item requests failed:\n{proc.stdout[-2000:]}")
    return requests, elapsed


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run_http_bench(items: int = 4000, seed: int = 0, workers: int | None = None,
                   latency_requests: int = 100, rounds: int = 5) -> dict[str, Any]:
    from reward_service.cli.bench_inprocess import measure_inprocess
    from reward_service.synth.mixes import standard_mix

    cores = workers or os.cpu_count() or 1
    mix = standard_mix(max(items, BATCH), seed)
    measure_inprocess(mix[: min(len(mix), 300)])  # first use loads compiled kernels: not the steady state
    per_round = max(2, len(mix) // BATCH)
    serve_args = ("--workers", str(cores), "--log-level", "warning")
    inprocess, rates, cpu_rates, single = [], [], [], []
    wrk = shutil.which("wrk") is not None
    with running_service(*serve_args, "--cache", "off") as service, tempfile.TemporaryDirectory() as tmp:
        base = service.base_url
        latencies_ms(base, grpo_bodies(mix, 2, "warm"))  # the service's own first-use costs
        script = os.path.join(tmp, "single.lua")
        Path(script).write_text(wrk_script(single_item_bodies(mix[:BATCH])))
        # Alternate the measurements and keep each one's best round: a 2-core machine shared with
        # anything else is noisy, and noise only ever makes a round slower.
        for r in range(rounds):
            inprocess.append(measure_inprocess(mix))
            bodies = grpo_bodies(mix, per_round, f"r{r}-")
            cpu_before = service_cpu_s(service.process.pid)
            rates.append(throughput(base, bodies))
            cpu_rates.append(per_round * BATCH / max(1e-9, service_cpu_s(service.process.pid) - cpu_before))
            if wrk:
                requests, elapsed = run_wrk(base, script)
                single.append(requests / elapsed)
        latency = latencies_ms(base, (grpo_body(mix, i, "lat-") for i in range(latency_requests)))
    with running_service(*serve_args, "--cache", "memory") as service:
        base = service.base_url
        cached = grpo_bodies(mix, 4, "hit-")
        latencies_ms(base, cached)  # fill the cache
        hit_rate = throughput(base, [cached[i % 4] for i in range(40)])
    best_inprocess, best_rate = max(inprocess), max(rates)
    per_core = best_rate / cores
    return {
        "cores": cores,
        "inprocess_items_per_s": round(best_inprocess, 1),
        "http_items_per_s": round(best_rate, 1),
        "http_items_per_s_per_core": round(per_core, 1),
        "http_ratio": round(per_core / best_inprocess, 3),
        # Items per CPU-second of the service's processes (HTTP, parsing, workers): its overhead,
        # whatever else the machine was doing.
        "http_items_per_cpu_s": round(max(cpu_rates), 1),
        "batch512_p50_ms": round(statistics.median(latency), 2),
        "batch512_p99_ms": round(percentile(latency, 99), 2),
        "cache_hit_items_per_s": round(hit_rate, 1),
        "single_item_items_per_s": round(max(single), 1) if single else None,
        "single_item_ratio": round(max(single) / best_rate, 3) if single else None,
    }
