"""`reward-service serve` flags and environment: defaults, overrides, the config file, bad settings."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from service_fixtures import item, real_server

from reward_service.cli.serve import add_serve_parser, settings_from_args
from reward_service.scoring import RewardConfig


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_no_arguments_means_localhost_8000_in_process_cache(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith("REWARD_SERVICE_")]:
        monkeypatch.delenv(name)
    args = parse()
    assert callable(args.func)
    s = settings_from_args(args)
    assert (s.host, s.port, s.cache_backend, s.api_keys) == ("127.0.0.1", 8000, "memory", [])
    assert (s.max_body_bytes, s.max_items, s.item_deadline_s, s.request_deadline_s) == (64 * 2**20, 4096, 2.0, 30.0)
    assert s.worker_count >= 1


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("REWARD_SERVICE_PORT", "9001")
    monkeypatch.setenv("REWARD_SERVICE_MAX_ITEMS", "10")
    monkeypatch.setenv("REWARD_SERVICE_API_KEYS", "env-a,env-b")
    s = settings_from_args(parse("--port", "9002", "--redis-url", "redis://127.0.0.1:1/0", "--workers", "3",
                                 "--item-deadline", "0.5", "--request-deadline", "9"))
    assert (s.port, s.max_items, s.workers, s.item_deadline_s, s.request_deadline_s) == (9002, 10, 3, 0.5, 9.0)
    assert [k.get_secret_value() for k in s.api_keys] == ["env-a", "env-b"]
    assert s.cache_backend == "redis"
    assert "127.0.0.1:1" not in repr(s)  # the Redis URL may hold a password: never shown


def test_reward_config_file_is_the_default_and_validated_like_overrides(tmp_path):
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"weights": {"graph_node": 1.0}, "graph": {"angle_mode": "signed_planar"}}))
    with real_server("--reward-config", str(good)) as (client, _):
        body = client.get("/v1/config").json()
        expected = RewardConfig.build({"weights": {"graph_node": 1.0}, "graph": {"angle_mode": "signed_planar"}})
        assert body["reward_config_id"] == expected.id and body["config"] == expected.to_dict()
        scored = client.post("/v1/rewards", json={"items": [item("a")], "config": {"weights": {"answer": 2.0}}})
        assert scored.json()["reward_config_id"] == RewardConfig.build({"weights": {"answer": 2.0}}, expected).id


@pytest.mark.parametrize("content", ['{"weights": {"answer": -1}}', '{"nope": 1}', "not json"])
def test_a_bad_config_file_stops_serve_with_a_message(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = subprocess.run([sys.executable, "-m", "reward_service.cli.serve", "serve", "--reward-config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "reward config file" in done.stderr


def test_inconsistent_limits_are_refused():
    done = subprocess.run([sys.executable, "-m", "reward_service.cli.serve", "serve", "--max-items", "100",
                           "--max-queued-items", "10"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "max_queued_items" in done.stderr
