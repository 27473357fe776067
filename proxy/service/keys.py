"""Typed application state keys, in one place."""

from __future__ import annotations

from aiohttp import web

from proxy.runtime import PolicyState
from proxy.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
POLICY = web.AppKey("policy", PolicyState)
