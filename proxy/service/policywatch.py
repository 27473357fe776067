"""The service follows its policy files too, and records every reload in the audit log.

``sargs run`` shares one ``PolicyState`` between gateway and service: whichever watcher
sees a change first reloads, the other does nothing (``reload(only_if_changed=True)``).
A service node on its own (``--only service``) reloads by itself. Applied and rejected
changes become ``policy-reload`` audit entries (versions, and the first problem of a
rejected change with its file and line; never policy contents).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.policy.loader import PolicyError
from proxy.runtime import Compiled
from proxy.service import keys
from proxy.store import audit

log = logging.getLogger("sargs.service.policy")

RELOAD_INTERVAL = 1.0


def _record(app: web.Application, old: str, new: Compiled | None,
            error: PolicyError | None) -> None:
    """Runs in the reloading thread: a blocking store call is fine here."""
    if keys.STORE not in app:
        return
    details: dict[str, object] = {"from": old}
    if new is not None:
        details["to"] = new.version
        details["applied"] = True
    else:
        details["applied"] = False
        details["problem"] = str(error.problems[0]) if error and error.problems else str(error)
    try:
        audit.append(app[keys.STORE], audit.Kind.policy_reload, actor="policy-watcher",
                     details=details)
    except Exception:
        log.exception("could not record the policy reload in the audit log")


async def _watch_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[keys.POLICY]
    unsubscribe = state.subscribe(lambda old, new, error: _record(app, old, new, error))
    task = asyncio.get_running_loop().create_task(state.watch(lambda: RELOAD_INTERVAL))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    unsubscribe()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_watch_ctx)
