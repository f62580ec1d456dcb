"""Probes and the config route. Probes need no auth and never touch Redis."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from reward_service.api.deps import ServiceDep, require_api_key
from reward_service.api.docs import responses
from reward_service.schemas import ConfigResponse, StatusBody
from reward_service.version import SCORER_VERSION

router = APIRouter()


@router.get("/healthz", summary="Liveness", response_model=StatusBody, responses=responses(500))
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz", summary="Readiness: workers up and not draining", response_model=StatusBody,
            responses=responses(500, 503))
async def readyz(service: ServiceDep) -> Response:
    service.check_ready()
    return Response(b'{"status":"ready"}', media_type="application/json")


@router.get("/v1/config", summary="The server's default reward config", response_model=ConfigResponse,
            responses=responses(401, 500), dependencies=[Depends(require_api_key)])
async def get_config(service: ServiceDep) -> Response:
    config, settings = service.default_config, service.settings
    body = {"reward_config_id": config.id, "scorer_version": SCORER_VERSION, "config": config.to_dict(),
            "limits": {"max_items": settings.max_items, "max_body_bytes": settings.max_body_bytes}}
    return Response(orjson.dumps(body), media_type="application/json")
