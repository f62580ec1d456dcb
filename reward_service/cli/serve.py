"""`reward-service serve`: run the HTTP service under uvicorn, with a graceful drain on SIGTERM.

Also runnable as `python -m reward_service.cli.serve serve ...` (the tests do). Imports of the web
stack stay inside functions: scoring workers re-import the main module (multiprocessing's rule), and
they must not pay for FastAPI.

On the first SIGTERM or SIGINT the service turns not-ready (/readyz 503, new scoring requests 503),
keeps serving for `--drain-grace` seconds so load balancers can notice, waits for the requests in
flight to finish, then stops uvicorn and its workers and exits 0. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reward_service.service.settings import Settings

# (flag, Settings field, type, help): only flags given on the command line override the environment.
# Each help ends with the field's default, read from Settings: a default lives in one place.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--host", "host", str, "bind address"),
    ("--port", "port", int, "port"),
    ("--redis-url", "redis_url", str, "cache in Redis, shared by replicas (without: the in-process cache)"),
    ("--reward-config", "reward_config_file", str, "JSON file with a partial reward config: the server's default"),
    ("--max-body-bytes", "max_body_bytes", int, "request body limit"),
    ("--max-items", "max_items", int, "items per request limit"),
    ("--max-queued-items", "max_queued_items", int, "queued items before 429"),
    ("--max-inflight-body-bytes", "max_inflight_body_bytes", int, "bytes of request bodies held at once before 429"),
    ("--workers", "workers", int, "scoring processes (0: one per core)"),
    ("--chunk-items", "chunk_items", int, "most items sent to a worker at once"),
    ("--item-deadline", "item_deadline_s", float, "seconds per item before its worker is killed"),
    ("--request-deadline", "request_deadline_s", float, "seconds per request"),
    ("--drain-grace", "drain_grace_s", float, "on SIGTERM, seconds to keep serving while not ready"),
    ("--header-timeout", "header_timeout_s", float, "seconds for a request's headers to arrive"),
    ("--body-timeout", "body_timeout_s", float, "seconds for a request's body to arrive"),
]
_CHOICES = {"cache": ("--cache", "cache backend (auto: Redis when a URL is given, else memory)"),
            "log_level": ("--log-level", "log level")}
_FLAGS: dict[str, str] = {flag[2:].replace("-", "_"): field for flag, field, _, _ in _OPTIONS}
_FLAGS.update({"api_key": "api_keys", "cache": "cache", "log_level": "log_level"})


def _with_default(text: str, field: str) -> str:
    from reward_service.service.settings import Settings

    default = Settings.model_fields[field].default
    if default is None:
        return text
    if isinstance(default, int) and not isinstance(default, bool) and default >= 2**20 and default % 2**20 == 0:
        return f"{text} (default {default // 2**20} MiB)"
    return f"{text} (default {default:g})" if isinstance(default, float) else f"{text} (default {default})"


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `serve` on an argparse subparsers object; its handler is `args.func(args) -> int`."""
    from typing import get_args

    from reward_service.service.settings import Settings

    p = subparsers.add_parser("serve", help="run the HTTP reward service",
                              description="Run the HTTP reward service. Every flag has a REWARD_SERVICE_* "
                                          "environment variable (flags win).")
    for flag, field, kind, text in _OPTIONS:
        p.add_argument(flag, type=kind, help=_with_default(text, field))
    for field, (flag, text) in _CHOICES.items():
        p.add_argument(flag, choices=get_args(Settings.model_fields[field].annotation), help=_with_default(text, field))
    p.add_argument("--api-key", action="append",
                   help="require this bearer token; repeat for several (prefer REWARD_SERVICE_API_KEYS: "
                        "a flag shows in the process list)")
    p.set_defaults(func=serve_command)
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    from reward_service.service.settings import Settings

    given = {field: getattr(args, flag) for flag, field in _FLAGS.items() if getattr(args, flag, None) is not None}
    return Settings(**given)


def serve_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"reward-service serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    return serve(settings)


def serve(settings: Settings) -> int:
    import uvicorn

    from reward_service.api.app import create_app
    from reward_service.api.protocol import DeadlineHttpProtocol
    from reward_service.service.logs import configure_logging
    from reward_service.service.runtime import tune_gc

    configure_logging(settings.log_level)
    app = create_app(settings)
    drain_timeout = settings.request_deadline_s + 5.0
    protocol = DeadlineHttpProtocol.with_deadlines(settings.header_timeout_s, settings.body_timeout_s, app.front)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            http=protocol, lifespan="on", server_header=False,
                            proxy_headers=False,  # nothing reads the client's address; saves ~3% per request
                            timeout_graceful_shutdown=int(drain_timeout), log_level=settings.log_level)
    server = _draining_server_class()(config, app.state.service, settings.drain_grace_s, drain_timeout)
    tune_gc()  # the modules and the app live as long as the process: see runtime.tune_gc
    server.run()
    return 0


def _draining_server_class() -> Any:
    """uvicorn.Server whose first exit signal drains instead of closing the port at once."""
    import asyncio
    import socket
    from types import FrameType

    import uvicorn

    from reward_service.service.pipeline import RewardService

    class DrainingServer(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, service: RewardService, grace_s: float,
                     timeout_s: float) -> None:
            super().__init__(config)
            self._service = service
            self._grace = grace_s
            self._timeout = timeout_s
            self._loop: asyncio.AbstractEventLoop | None = None
            self._drain: asyncio.Task[None] | None = None

        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self._drain is not None or self._loop is None or not self.started:
                super().handle_exit(sig, frame)  # a second signal, or not serving yet: uvicorn's way
                return
            # Runs in a signal handler: hand over to the loop, which owns all the state.
            self._loop.call_soon_threadsafe(self._start_drain)

        def _start_drain(self) -> None:
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_task(self._drain_then_exit())

        async def _drain_then_exit(self) -> None:
            await self._service.drain(self._grace, self._timeout)
            # should_exit, not handle_exit: uvicorn would re-raise the signal after shutdown and the
            # process would end "killed by SIGTERM" instead of exiting 0 after a clean drain.
            self.should_exit = True

    return DrainingServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reward-service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
