"""The gRPC surface: the shoal.v1 services over `QueueService`, with reflection and health."""

from __future__ import annotations

from shoal.protocols.grpc.listener import SERVICE_NAMES, GrpcListener, GrpcOptions, GrpcTls

__all__ = ["SERVICE_NAMES", "GrpcListener", "GrpcOptions", "GrpcTls"]
