"""The policy in force, and everything derived from it, swapped in one step on reload.

Used by the gateway and the service alike. A reload that fails keeps the policy in force:
nothing is half-applied.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from proxy.compliance.engine import Engine
from proxy.policy.catalog import Catalog
from proxy.policy.decide import AccessPolicy
from proxy.policy.loader import LoadedPolicy, PolicyError, load

log = logging.getLogger("sargs.policy")


@dataclass(frozen=True)
class Compiled:
    loaded: LoadedPolicy
    access: AccessPolicy
    catalog: Catalog
    engine: Engine

    @property
    def version(self) -> str:
        return self.loaded.version


def compile_policy(loaded: LoadedPolicy) -> Compiled:
    policy = loaded.policy
    engine = Engine.from_policy(policy)
    return Compiled(loaded, AccessPolicy(policy), Catalog(policy.platforms), engine)


Listener = Callable[[str, "Compiled | None", PolicyError | None], None]
"""Called after a reload that changed something: (old version, new policy or None, error)."""


class PolicyState:
    """Holds the compiled policy; ``reload()`` replaces it only when the new one is valid.

    Several watchers may share one state (gateway and service in one process): reloads are
    serialized, and a change already handled by one is not handled again by another.
    Listeners run in the thread that reloads (watchers reload in a worker thread).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.current = compile_policy(load(self.directory))
        self._stamp = self._fingerprint()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear of every applied or rejected change; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, old: str, new: Compiled | None, error: PolicyError | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(old, new, error)
            except Exception:  # a listener must not undo a reload
                log.exception("policy listener failed")

    def _fingerprint(self) -> tuple[tuple[str, float, int], ...]:
        out = []
        for directory in self.current.loaded.directories:
            for path in sorted(directory.rglob("*.yaml")):
                try:
                    st = path.stat()
                except OSError:
                    continue
                out.append((str(path), st.st_mtime, st.st_size))
        return tuple(out)

    def changed(self) -> bool:
        """Whether any file of the policy (bases included) changed since the last load."""
        return self._fingerprint() != self._stamp

    def reload(self, *, only_if_changed: bool = False) -> PolicyError | None:
        """Load again. Returns the error (and keeps the old policy) when the new one is bad.

        ``only_if_changed``: do nothing when the files are as last seen (another watcher
        sharing this state already handled the change).
        """
        with self._lock:
            stamp = self._fingerprint()
            if only_if_changed and stamp == self._stamp:
                return None
            old = self.current.version
            try:
                compiled = compile_policy(load(self.directory))
            except PolicyError as exc:
                self._stamp = stamp  # do not report the same broken files again and again
                log.error("policy reload rejected, keeping %s: %s", old, exc)
                self._notify(old, None, exc)
                return exc
            self.current = compiled
            self._stamp = self._fingerprint()
            if compiled.version != old:
                log.info("policy reloaded: %s -> %s", old, compiled.version)
                self._notify(old, compiled, None)
            return None

    async def watch(self, interval: Callable[[], float]) -> None:
        """Poll the files every ``interval()`` seconds; reload on change, in a thread."""
        while True:
            await asyncio.sleep(interval())
            try:
                if self.changed():
                    await asyncio.to_thread(self.reload, only_if_changed=True)
            except Exception:  # keep watching whatever happens
                log.exception("policy watcher failed; retrying")
