"""The FastAPI application over a `QueueService`, and a uvicorn runner for an existing loop.

The composition root wires it::

    app = create_app(service, settings=HttpSettings(...))
    http = await serve_http(app, "127.0.0.1", 8080)   # http.port is the bound port
    ...
    await http.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import APIRouter, Depends, FastAPI

from shoal.core.access import AccessService
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService

from . import admin, events, jobs, metrics, overview, queues, worker_pull, workers
from . import schedules as schedule_routes
from ._body_limit import BodyLimit
from ._counts import QueueCounts
from ._hosts import LoopbackHosts
from ._params import authorize
from ._recorder import Recorder
from .dashboard import mount as mount_dashboard
from .errors import install_error_handlers
from .metrics import Metrics
from .state import HttpSettings, HttpState

__all__ = ["HttpServer", "create_app", "serve_http"]

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(
    service: QueueService,
    *,
    settings: HttpSettings | None = None,
    schedules: ScheduleApi | None = None,
    access: AccessService | None = None,
) -> FastAPI:
    """The HTTP surface of `service`: REST under /api/v1, SSE, pull-worker routes, /metrics,
    /healthz and the dashboard at /.

    The app's lifespan feeds metrics and charts from the event bus; run it with its
    lifespan (uvicorn does; in tests, `async with app.router.lifespan_context(app)`).
    """
    settings = settings or HttpSettings()
    state = HttpState(
        service=service,
        settings=settings,
        recorder=Recorder(Metrics(), settings.chart_bucket_seconds, settings.chart_buckets),
        counts=QueueCounts(service, settings.counts_ttl),
        schedules=schedules,
        access=access,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Both observe every event as it is published (their filters keep nothing).
        observers = [service.events.subscribe(state.counts.observe, capacity=1)]
        if settings.record_events:
            observers.append(service.events.subscribe(state.recorder.observe, capacity=1))
            if state.auth.events is not service.events:  # an AccessService built without it
                deleted = state.auth.events.subscribe(
                    state.recorder.observe, capacity=1, kinds=("namespace.deleted",)
                )
                observers.append(deleted)
        try:
            yield
        finally:
            state.close_streams()
            for observer in observers:
                observer.close()

    app = FastAPI(
        title=f"{settings.title} API",
        version="1",
        description="Jobs, queues, workers and events of a shoal server.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.shoal = state
    install_error_handlers(app)
    # Outside the router, so a body over the limit is refused before any route reads it.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if not state.auth.enabled:  # no credentials to stop a rebound page: see _hosts
        app.add_middleware(LoopbackHosts)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authorize)])
    for module in (jobs, worker_pull, queues, workers, schedule_routes, events):
        api.include_router(module.router)
    api.include_router(overview.api_router)
    api.include_router(admin.router)
    app.include_router(api)
    app.include_router(overview.health_router)
    app.include_router(metrics.router)
    mount_dashboard(app)
    return app


class _Server(uvicorn.Server):
    # The composition root owns the process's signals; uvicorn must not take them over.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(slots=True)
class HttpServer:
    """A running uvicorn server; `port` is the port it listens on."""

    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        """Close the event streams, let requests in flight finish (up to 5 s), and stop."""
        state: HttpState = self.app.state.shoal
        state.close_streams()
        self.server.should_exit = True
        await self.task


async def serve_http(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = 2048,
    tls: tuple[str, str] | None = None,
) -> HttpServer:
    """Serve `app` on the running loop; port 0 picks a free port. Returns once it listens.

    With `tls` (a PEM certificate file and its key file) it serves HTTPS.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    config = uvicorn.Config(
        app,
        log_config=None,  # the entry point configures logging, never a library
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        backlog=backlog,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="shoal-http")
    while not server.started:
        if task.done():
            await task  # raises the start-up error
            raise OSError(f"HTTP server on {host}:{port} stopped at start-up")
        await asyncio.sleep(0.01)
    bound = sock.getsockname()[1]
    logger.info(
        "HTTP listening on %s:%d", host, bound, extra={"event": "http.listening", "port": bound}
    )
    return HttpServer(app=app, server=server, task=task, port=bound)
