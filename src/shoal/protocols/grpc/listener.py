"""The gRPC listener: one `grpc.aio` server with the shoal.v1 services, server reflection and
the standard health service, started and stopped by the composition root.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any, cast

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from shoal.core.access import AccessService
from shoal.core.errors import Unavailable
from shoal.core.identity import IdentityStore
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.protocols.grpc._auth import Authenticating, Callers
from shoal.protocols.grpc._decoding import TolerantDecoding
from shoal.protocols.grpc.admin import AdminServicer
from shoal.protocols.grpc.events import EventServicer
from shoal.protocols.grpc.gen.cluster.v1 import leader_pb2, leader_pb2_grpc
from shoal.protocols.grpc.gen.ocelot import ocelot_pb2, ocelot_pb2_grpc
from shoal.protocols.grpc.gen.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from shoal.protocols.grpc.gen.shoal.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    schedules_pb2,
    schedules_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from shoal.protocols.grpc.gowork import GoWorkCluster, LeaderServicer, SchedulerServicer
from shoal.protocols.grpc.jobs import JobServicer
from shoal.protocols.grpc.native.server import NativeServer
from shoal.protocols.grpc.ocelot import OcelotServicer
from shoal.protocols.grpc.queues import QueueServicer
from shoal.protocols.grpc.schedules import ScheduleServicer
from shoal.protocols.grpc.workers import WorkerServicer

__all__ = ["COMPAT_SERVICE_NAMES", "SERVICE_NAMES", "GrpcListener", "GrpcOptions", "GrpcTls"]

logger = logging.getLogger(__name__)

#: The full names of the shoal.v1 services.
SERVICE_NAMES: tuple[str, ...] = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (jobs_pb2, "JobService"),
        (admin_pb2, "AdminService"),
        (queues_pb2, "QueueService"),
        (workers_pb2, "WorkerService"),
        (events_pb2, "EventService"),
    )
)
#: The schedules service, served when the composition root hands the listener a scheduler.
SCHEDULE_SERVICE = schedules_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name
#: The seeds' services spoken with their own names (go-work's and Ocelot's).
COMPAT_SERVICE_NAMES: tuple[str, ...] = (
    leader_pb2.DESCRIPTOR.services_by_name["LeaderService"].full_name,
    scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name,
    ocelot_pb2.DESCRIPTOR.services_by_name["OcelotWorker"].full_name,
)


@dataclass(frozen=True, slots=True)
class GrpcOptions:
    """How the gRPC listener behaves."""

    #: Largest message accepted or sent; a bigger one is refused with RESOURCE_EXHAUSTED.
    max_message_bytes: int = MAX_MESSAGE_BYTES
    #: Serve grpc.reflection so that grpcurl can list and describe the services.
    reflection: bool = True
    #: A go-work member silent this long has left (go-work's HEARTBEAT_TIMEOUT).
    gowork_heartbeat_timeout: float = 30.0
    #: Serve TLS with this certificate (and mutual TLS when it names a client CA).
    tls: GrpcTls | None = None


@dataclass(frozen=True, slots=True)
class GrpcTls:
    """PEM contents of the listener's certificate chain and key, and of the CA that signs
    client certificates (mutual TLS: a client without such a certificate is refused).
    """

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """The server credentials."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcListener:
    """Serves `QueueService` over gRPC on one address."""

    def __init__(
        self,
        service: QueueService,
        options: GrpcOptions | None = None,
        schedules: ScheduleApi | None = None,
        access: AccessService | None = None,
    ) -> None:
        self.service = service
        self.options = options or GrpcOptions()
        #: The scheduler, as the composition root adapts it; no ScheduleService without it.
        self.schedules = schedules
        #: Authentication (off, every caller anonymous with every right, when not given).
        self.access = access or AccessService(
            cast(IdentityStore, service.store), enabled=False, events=service.events
        )
        self.callers = Callers(service, self.access)
        self.workers = WorkerServicer(service, self.callers, self.options.max_message_bytes)
        self.jobs = JobServicer(self.callers, self.options.max_message_bytes)
        self._health = health_aio.HealthServicer()
        self.gowork = GoWorkCluster(service, self.options.gowork_heartbeat_timeout)
        self._gowork_task: asyncio.Task[None] | None = None
        self._server: grpc.aio.Server | None = None
        self._native: NativeServer | None = None
        self._registered: list[tuple[Any, object]] | None = None
        #: The addresses actually bound (the port is chosen by the system when 0 was asked).
        self.address = ""
        self.native_address = ""

    def _servicers(self) -> list[tuple[Any, object]]:
        """Each servicer with the generated function that registers it, made once: the gRPC
        and native listeners share them (one registry of worker sessions, of enqueue streams).
        """
        if self._registered is not None:
            return self._registered
        servicers: list[tuple[Any, object]] = [
            (jobs_pb2_grpc.add_JobServiceServicer_to_server, self.jobs),
            (queues_pb2_grpc.add_QueueServiceServicer_to_server, QueueServicer(self.callers)),
            (workers_pb2_grpc.add_WorkerServiceServicer_to_server, self.workers),
            (
                events_pb2_grpc.add_EventServiceServicer_to_server,
                EventServicer(self.service, self.callers),
            ),
            (health_pb2_grpc.add_HealthServicer_to_server, self._health),
            (
                admin_pb2_grpc.add_AdminServiceServicer_to_server,
                AdminServicer(self.service, self.callers),
            ),
            (leader_pb2_grpc.add_LeaderServiceServicer_to_server, LeaderServicer(self.gowork)),
            (
                scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server,
                SchedulerServicer(self.gowork),
            ),
            (ocelot_pb2_grpc.add_OcelotWorkerServicer_to_server, OcelotServicer(self.callers)),
        ]
        if self.schedules is not None:
            add = schedules_pb2_grpc.add_ScheduleServiceServicer_to_server
            servicers.append((add, ScheduleServicer(self.schedules, self.callers)))
        self._registered = servicers
        return servicers

    def _interceptors(self) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
        return [TolerantDecoding(), Authenticating(self.access)]

    async def start(self, host: str, port: int) -> str:
        """Bind and start serving; the bound address. `Unavailable` if it cannot bind."""
        size = self.options.max_message_bytes
        server = grpc.aio.server(
            interceptors=self._interceptors(),
            options=[
                # grpc sets SO_REUSEPORT by default, which lets a second server bind a port
                # that is in use; shoal must fail loudly instead.
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
            ],
        )
        for add, servicer in self._servicers():
            add(servicer, server)
        if self.options.reflection:
            names = (*self._service_names(), reflection.SERVICE_NAME)
            reflection.enable_server_reflection(names, server)
        wanted = _address(host, port)
        try:
            tls = self.options.tls
            if tls is None:
                bound = server.add_insecure_port(wanted)
            else:
                bound = server.add_secure_port(wanted, tls.credentials())
        except RuntimeError as exc:
            raise Unavailable(f"cannot listen on {wanted} (gRPC): {_why(exc)}") from exc
        if bound == 0:
            raise Unavailable(f"cannot listen on {wanted} (gRPC): address in use or not local")
        await server.start()
        await self._serving()
        self._server = server
        self.address = _address(host, bound)
        logger.info(
            "gRPC listening on %s",
            self.address,
            extra={"event": "grpc.listening", "address": self.address},
        )
        return self.address

    async def start_native(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> str:
        """Serve the same services on the native framing too (docs/native-protocol.md); the
        bound address. `Unavailable` if it cannot bind.
        """
        server = NativeServer(self._interceptors(), self.options.max_message_bytes)
        for add, servicer in self._servicers():
            add(servicer, server)
        bound = await server.start(host, port, tls)
        self._native = server
        self.native_address = _address(host, bound)
        await self._serving()
        logger.info(
            "native protocol listening on %s",
            self.native_address,
            extra={"event": "native.listening", "address": self.native_address},
        )
        return self.native_address

    def _service_names(self) -> tuple[str, ...]:
        names = (*SERVICE_NAMES, *COMPAT_SERVICE_NAMES, HEALTH_SERVICE)
        return names if self.schedules is None else (*names, SCHEDULE_SERVICE)

    async def _serving(self) -> None:
        """A port serves: go-work's dispatch runs (once), health says SERVING."""
        if self._gowork_task is None:
            self._gowork_task = asyncio.create_task(self.gowork.run())
        for name in ("", *(n for n in self._service_names() if n.startswith("shoal."))):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        """Stop accepting calls, ask workers to drain, and end what remains after `grace`."""
        server, native = self._server, self._native
        if server is None and native is None:
            return
        self._server = self._native = None
        await self._health.enter_graceful_shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        self.workers.drain_all("server shutting down")
        self.jobs.enqueue_streams.close()  # producers keep theirs open: end them, answered
        # Workers finish their jobs and hang up; meanwhile unary calls go on being served.
        while self.workers.sessions and loop.time() < deadline:
            await asyncio.sleep(0.05)
        remaining = max(deadline - loop.time(), 0.0)
        await asyncio.gather(
            *(() if server is None else (server.stop(remaining),)),
            *(() if native is None else (native.stop(remaining),)),
        )
        if self._gowork_task is not None:
            # it mostly waits for a ready job; a push in flight ends with the call it made
            self.gowork.stop()
            self._gowork_task.cancel()
            await asyncio.gather(self._gowork_task, return_exceptions=True)
        # Sessions cancelled by the stop release their leases in their own tasks: wait for them.
        while self.workers.sessions and loop.time() < deadline + 5.0:
            await asyncio.sleep(0.05)
        await self.workers.close()


def _why(exc: RuntimeError) -> str:
    text = str(exc)
    return "address in use" if "bind" in text.lower() else text
