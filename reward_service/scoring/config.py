"""Reward config (reward-spec section 8): defaults, deep-merge of partial overrides, validation, id.

Validation is hand-written rather than pydantic because the spec wants exact type rules: a bool is
not a weight, a string is never coerced to a number, and an unknown key anywhere is an error.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from reward_service.errors import ConfigError

COMPONENTS = ("format", "answer", "graph_node", "graph_edge", "length")

DEFAULT_CONFIG: dict[str, Any] = {
    "weights": {"format": 1.0, "answer": 1.0, "graph_node": 0.5, "graph_edge": 0.5, "length": 0.0},
    "graph": {
        "angle_mode": "unsigned",
        "node_weighting": "union",
        "requires_format": True,
        "requires_answer": False,
    },
    "length": {"min_tokens": 320, "max_tokens": 512},
    "limits": {"max_completion_chars": 262144},
}

_CHOICES = {"angle_mode": ("unsigned", "signed_planar"), "node_weighting": ("union", "gt")}
# Weights are bounded so that every sum a reward enters stays finite: a total (five components in [0, 1])
# and a group's advantages (squares of rewards). Unbounded, weights of 1e308 made the total infinite
# (an "ok" result with a null reward) and the advantages overflow.
MAX_WEIGHT = 1e6




def _merge(base: dict[str, Any], override: Mapping[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in base:
            raise ConfigError(f"unknown config key '{where}'")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config '{where}' must be an object")
            out[key] = _merge(base[key], value, where)
        else:
            out[key] = value
    return out


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"config '{where}' must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 <= value <= MAX_WEIGHT):
        raise ConfigError(f"config '{where}' must be a finite number from 0 to {MAX_WEIGHT:g}, got {value}")
    return float(value)


def _count(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"config '{where}' must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ConfigError(f"config '{where}' must be >= {minimum}, got {value}")
    return value


def _validate(merged: dict[str, Any]) -> dict[str, Any]:
    weights = {k: _weight(merged["weights"][k], f"weights.{k}") for k in COMPONENTS}
    graph = dict(merged["graph"])
    for key, choices in _CHOICES.items():
        if graph[key] not in choices:
            raise ConfigError(f"config 'graph.{key}' must be one of {list(choices)}, got {graph[key]!r}")
    for key in ("requires_format", "requires_answer"):
        if not isinstance(graph[key], bool):
            raise ConfigError(f"config 'graph.{key}' must be true or false")
    length = {k: _count(merged["length"][k], f"length.{k}") for k in ("min_tokens", "max_tokens")}
    if length["min_tokens"] > length["max_tokens"]:
        raise ConfigError(
            f"config 'length.min_tokens' ({length['min_tokens']}) is above 'length.max_tokens' "
            f"({length['max_tokens']})"
        )
    max_chars = _count(merged["limits"]["max_completion_chars"], "limits.max_completion_chars", 1)
    return {"weights": weights, "graph": graph, "length": length, "limits": {"max_completion_chars": max_chars}}


@dataclass(frozen=True)
class RewardConfig:
    """A merged, validated reward config. Build it with `RewardConfig.build`."""

    weights: Mapping[str, float]
    angle_mode: str
    node_weighting: str
    requires_format: bool
    requires_answer: bool
    min_tokens: int
    max_tokens: int
    max_completion_chars: int

    @classmethod
    def build(cls, overrides: Mapping[str, Any] | None = None, base: RewardConfig | None = None) -> RewardConfig:
        """Deep-merge `overrides` over `base` (default: the spec's defaults) and validate the result."""
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError("config must be an object")
        start = base.to_dict() if base is not None else DEFAULT_CONFIG
        merged = _validate(_merge(start, overrides or {}, ""))
        graph, length = merged["graph"], merged["length"]
        return cls(
            weights=merged["weights"],
            angle_mode=graph["angle_mode"],
            node_weighting=graph["node_weighting"],
            requires_format=graph["requires_format"],
            requires_answer=graph["requires_answer"],
            min_tokens=length["min_tokens"],
            max_tokens=length["max_tokens"],
            max_completion_chars=merged["limits"]["max_completion_chars"],
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RewardConfig:
        """A JSON file holding a partial config, merged over the spec's defaults (ConfigError if bad)."""
        try:
            overrides = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        return cls.build(overrides)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": {k: float(self.weights[k]) for k in COMPONENTS},
            "graph": {
                "angle_mode": self.angle_mode,
                "node_weighting": self.node_weighting,
                "requires_format": self.requires_format,
                "requires_answer": self.requires_answer,
            },
            "length": {"min_tokens": self.min_tokens, "max_tokens": self.max_tokens},
            "limits": {"max_completion_chars": self.max_completion_chars},
        }

    @cached_property
    def id(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON (keys sorted, no spaces)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


DEFAULT_REWARD_CONFIG = RewardConfig.build()
