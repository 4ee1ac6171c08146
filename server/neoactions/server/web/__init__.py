"""The HTTP surface: CloudEvents ingest, signed webhooks and the web dashboard, served in the
gRPC server's event loop when ``http_port`` is set (docs/http.md, docs/dashboard.md)."""

from __future__ import annotations

from neoactions.server.web.server import build_app, http_server

__all__ = ["build_app", "http_server"]
