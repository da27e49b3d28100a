"""The HTTP surface: REST under /api/v1, server-sent events, pull-worker routes, /metrics,
/healthz and the dashboard at /. It calls only `shoal.core.service.QueueService`.
"""

from __future__ import annotations

from .app import HttpServer, create_app, serve_http
from .state import HttpSettings

__all__ = ["HttpServer", "HttpSettings", "create_app", "serve_http"]
