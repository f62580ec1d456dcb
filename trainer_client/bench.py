"""What the client costs: 4,096 items of the standard mix in one `RewardClient.score` call, against the
same items posted as one request by hand (httpx, the body built once, the answer read with orjson).

    python -m trainer_client.bench [--items 4096] [--rounds 3] [--json]

Starts `reward-service serve` on 127.0.0.1 (one worker per core, cache off so every round scores) and
alternates the two ways round by round, so both see the same machine. `--chunk-items 512` makes the
client send the batch as 8 concurrent requests instead. Needs the `[service]` extra.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
import orjson

from trainer_client.client import RewardClient


def _items(n: int, seed: int) -> list[dict[str, Any]]:
    from reward_service.synth.mixes import standard_mix

    return standard_mix(n, seed=seed)  # ready to post


def run(items: int = 4096, rounds: int = 3, seed: int = 0, chunk_items: int | None = None) -> dict[str, float]:
    from reward_service.cli.bench_http import running_service

    batch = _items(items, seed)
    body = orjson.dumps({"items": batch, "advantages": "grpo"})
    client_s: list[float] = []
    by_hand_s: list[float] = []
    with running_service("--cache", "off", "--max-items", str(max(items, 4096))) as service, \
            RewardClient(service.base_url, max_items=chunk_items) as client, \
            httpx.Client(base_url=service.base_url, timeout=120) as raw:
        client.score(batch[:256], advantages="grpo")  # warm-up: connections, worker caches
        for _ in range(rounds):
            start = time.perf_counter()
            results = client.score(batch, advantages="grpo")
            client_s.append(time.perf_counter() - start)
            assert len(results) == items
            start = time.perf_counter()
            response = raw.post("/v1/rewards", content=body, headers={"Content-Type": "application/json"})
            answer = orjson.loads(response.content)
            by_hand_s.append(time.perf_counter() - start)
            assert response.status_code == 200 and len(answer["results"]) == items
    client_rate = items / statistics.median(client_s)
    by_hand_rate = items / statistics.median(by_hand_s)
    chunks = -(-items // (chunk_items or max(items, 4096)))
    return {"items": items, "client_chunks": chunks, "client_items_per_s": round(client_rate, 1),
            "by_hand_items_per_s": round(by_hand_rate, 1), "client_ratio": round(client_rate / by_hand_rate, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer_client.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-items", type=int, default=None,
                        help="the client's item limit per request (default: the server's, 4096): below --items, "
                             "the client sends the batch as concurrent chunks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run(args.items, args.rounds, args.seed, args.chunk_items)
    print(orjson.dumps(figures).decode() if args.json else "\n".join(f"{k:22s} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
