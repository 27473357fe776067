"""Typed application state keys, in one place."""

from __future__ import annotations

from aiohttp import web

from proxy.runtime import PolicyState
from proxy.settings import Settings
from proxy.store.db import Store

SETTINGS = web.AppKey("settings", Settings)
POLICY = web.AppKey("policy", PolicyState)
STORE = web.AppKey("store", Store)
"""The open store (``create_app`` opens ``Settings.database`` unless a test set one)."""
