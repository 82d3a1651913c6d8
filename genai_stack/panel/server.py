"""Serve the panel with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from genai_stack.panel.app import create_app
from genai_stack.panel.config import PanelConfig

log = logging.getLogger(__name__)


def serve(config: PanelConfig) -> None:
    """Run the panel until interrupted (binds 127.0.0.1 unless told otherwise)."""
    if not config.loopback and not config.https_only:
        log.warning(
            "the panel listens on %s without https-only cookies: put it behind a TLS reverse "
            "proxy and pass --https-only",
            config.host,
        )
    app = create_app(config)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
