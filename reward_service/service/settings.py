"""The service's one Settings object: environment (`REWARD_SERVICE_*`) and `reward-service serve` flags.

Every knob of the HTTP service lives here, so the app factory, the CLI, the benchmark and the tests
build the service the same way: `create_app(Settings(...))`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from reward_service.scoring import ConfigError, RewardConfig

CacheBackend = Literal["auto", "memory", "redis", "off"]


def default(field: str) -> Any:
    """A setting's default, for the pieces that also run without a Settings (the worker pool, the caches,
    the command line's help): each default lives here only."""
    return Settings.model_fields[field].default


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REWARD_SERVICE_", extra="ignore", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    # Cache: "auto" is Redis when a URL is given, else the in-process LRU.
    cache: CacheBackend = "auto"
    redis_url: SecretStr | None = None  # may hold a password: never shown in a dump or a log
    redis_timeout_ms: float = Field(default=50.0, gt=0, description="a Redis call slower than this is skipped")
    redis_retry_s: float = Field(default=1.0, ge=0, description="after a Redis fault, skip Redis for this long")
    cache_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)
    cache_max_entries: int = Field(default=200_000, ge=1)
    cache_max_bytes: int = Field(default=256 * 2**20, ge=1)
    fault_log_interval_s: float = Field(default=30.0, gt=0,
                                        description="during a cache outage, one reminder log line per interval")

    # Comma-separated in the environment (NoDecode: not JSON); SecretStr so a dump never shows them.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    reward_config_file: Path | None = None

    max_body_bytes: int = Field(default=64 * 2**20, ge=1)
    max_inflight_body_bytes: int = Field(default=128 * 2**20, ge=1,
                                         description="request bodies held at once, in bytes, before 429")
    max_items: int = Field(default=4096, ge=1)
    max_queued_items: int = Field(default=16384, ge=1)

    workers: int = Field(default=0, ge=0, description="scoring processes; 0 means one per core")
    chunk_items: int = Field(default=64, ge=1, description="most items sent to a worker at once")
    item_deadline_s: float = Field(default=2.0, gt=0)
    request_deadline_s: float = Field(default=30.0, gt=0)
    header_timeout_s: float = Field(default=10.0, gt=0, description="a request's headers must arrive within this")
    body_timeout_s: float = Field(default=30.0, gt=0,
                                  description="a request's body must arrive within this of its headers")
    drain_grace_s: float = Field(default=0.0, ge=0, description="on SIGTERM, keep serving (not ready) this long")
    # Import path of the per-item scoring function run in the workers. Only tests change it (to a
    # scorer that can be made slow or crash); production code has no test hooks of its own.
    scorer: str = "reward_service.scoring:score"

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    _reward_config: RewardConfig | None = PrivateAttr(None)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.max_inflight_body_bytes < self.max_body_bytes:
            raise ValueError("max_inflight_body_bytes must be at least max_body_bytes, or a full body could never run")
        if self.max_queued_items < self.max_items:
            raise ValueError("max_queued_items must be at least max_items, or a full request could never run")
        if self.cache == "redis" and self.redis_url is None:
            raise ValueError("cache 'redis' needs redis_url")
        # Load the config file now: a bad file fails at startup, not on the first request.
        self._reward_config = self._load_reward_config()
        return self

    @property
    def worker_count(self) -> int:
        if self.workers:
            return self.workers
        # The CPUs this process may run on (a cpuset in a container), not every CPU of the host.
        affinity = getattr(os, "sched_getaffinity", None)
        return len(affinity(0)) if affinity is not None else os.cpu_count() or 1

    @property
    def cache_backend(self) -> Literal["memory", "redis", "off"]:
        if self.cache == "auto":
            return "redis" if self.redis_url is not None else "memory"
        return self.cache

    def key_bytes(self) -> list[bytes]:
        return [k.get_secret_value().encode() for k in self.api_keys]

    @property
    def reward_config(self) -> RewardConfig:
        """The server's default reward config: the spec's defaults, with the config file merged over
        (loaded when the settings are validated)."""
        assert self._reward_config is not None
        return self._reward_config

    def _load_reward_config(self) -> RewardConfig:
        if self.reward_config_file is None:
            return RewardConfig.build()
        try:
            return RewardConfig.from_file(self.reward_config_file)
        except ConfigError as exc:
            raise ValueError(f"reward config file {self.reward_config_file}: {exc}") from None
