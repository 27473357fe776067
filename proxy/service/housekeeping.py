"""Background jobs every service node runs (each idempotent, so several nodes may):
pending requests older than ``Settings.request_lapse_hours`` lapse, the audit log is
pruned to ``Settings.audit_retention_days``, and the audit chain's head is anchored to
``Settings.audit_anchor_file`` at start and every ``Settings.audit_anchor_minutes``;
allowances expired a day ago are deleted (the audit log keeps their record)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from proxy.service import keys
from proxy.store import StoreError, allowances, audit, auditverify, requests
from proxy.store.requests import AccessRequest

log = logging.getLogger("sargs.service.housekeeping")
LAPSE_INTERVAL = 60.0

# --- lapsing --------------------------------------------------------------------------------


async def lapse_now(app: web.Application) -> list[AccessRequest]:
    """Lapse pending requests older than ``request_lapse_hours`` (and tell requesters)."""
    settings = app[keys.SETTINGS]
    lapsed: list[AccessRequest] = await asyncio.to_thread(
        requests.lapse_pending, app[keys.STORE], timedelta(hours=settings.request_lapse_hours))
    if lapsed:
        log.info("%d pending request(s) lapsed", len(lapsed))
    return lapsed


async def prune_now(app: web.Application,
                    now: datetime | None = None) -> audit.PruneResult | None:
    """Apply ``audit_retention_days`` (0: keep everything); the store writes a checkpoint."""
    days = app[keys.SETTINGS].audit_retention_days
    if not days:
        return None
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    result: audit.PruneResult | None = await asyncio.to_thread(
        audit.prune, app[keys.STORE], before, actor="retention")
    if result is not None:
        log.info("audit retention: pruned %d entries through seq %d",
                 result.pruned, result.through_seq)
    return result


async def purge_allowances_now(app: web.Application) -> int:
    """Delete allowances that expired more than a day ago."""
    before = datetime.now(UTC) - timedelta(days=1)
    return await asyncio.to_thread(allowances.purge, app[keys.STORE], before)


async def anchor_now(app: web.Application) -> auditverify.Anchor:
    settings = app[keys.SETTINGS]
    return await asyncio.to_thread(auditverify.anchor, app[keys.STORE],
                                   settings.audit_anchors_path)


async def _lapse_ctx(app: web.Application) -> AsyncIterator[None]:
    closing = asyncio.Event()
    every = app[keys.SETTINGS].audit_anchor_minutes * 60
    started = time.monotonic()
    if every:
        try:
            await anchor_now(app)
        except (SQLAlchemyError, StoreError, OSError) as exc:
            log.warning("audit anchor failed: %s", exc)

    async def loop() -> None:
        anchored = started
        # The first pass comes one interval after start: a request made (or lapsed by
        # hand) right after start never races the background pass.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), LAPSE_INTERVAL)
            if closing.is_set():
                return
            try:
                await lapse_now(app)
                await prune_now(app)
                await purge_allowances_now(app)
                if every and time.monotonic() - anchored >= every:
                    await anchor_now(app)
                    anchored = time.monotonic()
            except (SQLAlchemyError, StoreError, OSError) as exc:
                log.warning("housekeeping (lapse, audit retention, anchor) failed: %s", exc)

    task = asyncio.get_running_loop().create_task(loop())
    yield
    # Not cancelled: a store call in its thread finishes before the store closes.
    closing.set()
    await task



def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_lapse_ctx)
