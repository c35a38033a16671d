"""The core's own plugin: nothing yet but a place for defaults the core provides as hooks."""

from __future__ import annotations
