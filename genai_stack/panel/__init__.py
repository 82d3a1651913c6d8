"""The web panel over the driver: ``create_app(PanelConfig.create(...))`` or
``genai-stack panel``."""

from __future__ import annotations

from genai_stack.panel.app import create_app
from genai_stack.panel.config import PanelConfig

__all__ = ["PanelConfig", "create_app"]
