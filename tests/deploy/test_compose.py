"""docker-compose.yml, read as a file and validated by `docker-compose config` (no Docker daemon here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from deploy_tools import REPO, run, tool

COMPOSE = REPO / "docker-compose.yml"


def services() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return loaded


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = tool("docker-compose", "apt-get install docker-compose")
    run(binary, "-f", str(COMPOSE), "config", "--quiet", cwd=REPO)


def test_the_stack_has_its_four_services() -> None:
    assert set(services()) == {"reward-service", "redis", "prometheus", "grafana"}


def test_every_mounted_file_exists_and_is_read_only() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if not source.startswith("."):
                continue  # a named volume (Prometheus's data)
            assert (REPO / source).exists(), f"{name}: {source} does not exist"
            assert mode == ["ro"], f"{name}: {source} should be mounted read-only"
            assert Path(target).is_absolute()


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        check = service.get("healthcheck", {})
        assert check.get("test", [None])[0] == "CMD", f"{name}: exec-form healthcheck"
        assert {"interval", "timeout", "retries"} <= set(check), name


def test_images_and_ports_are_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9]+)?", tag), f"{name}: {image} is not pinned to a version"
        for port in service.get("ports", []):
            assert re.fullmatch(r"(127\.0\.0\.1:)?\d+:\d+", port), f"{name}: port {port} is not pinned"


def test_service_waits_for_redis_and_runs_one_worker_per_core() -> None:
    svc = services()["reward-service"]
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert svc["environment"]["REWARD_SERVICE_REDIS_URL"] == "redis://redis:6379/0"
    assert int(svc["environment"]["REWARD_SERVICE_WORKERS"]) == int(svc["deploy"]["resources"]["limits"]["cpus"])
    assert svc["build"]["target"] == "service" and svc["read_only"] is True
    assert any(t.startswith("/var/cache/numba") for t in svc["tmpfs"]), "numba's cache must be writable"
    grafana = services()["grafana"]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_prometheus_mounts_the_projects_scrape_config_and_rules() -> None:
    mounts = services()["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["reward-service:8000"], "the compose service's name and port"
