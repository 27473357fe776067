"""The policy in force, and everything derived from it, swapped in one step on reload.

Used by the gateway and the service alike. A reload that fails keeps the policy in force:
nothing is half-applied.
"""

from __future__ import annotations

import logging
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
    return Compiled(loaded, AccessPolicy(policy), Catalog(policy.platforms), Engine(policy))


class PolicyState:
    """Holds the compiled policy; ``reload()`` replaces it only when the new one is valid."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.current = compile_policy(load(self.directory))
        self._stamp = self._fingerprint()

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

    def reload(self) -> PolicyError | None:
        """Load again. Returns the error (and keeps the old policy) when the new one is bad."""
        stamp = self._fingerprint()
        try:
            compiled = compile_policy(load(self.directory))
        except PolicyError as exc:
            self._stamp = stamp  # do not report the same broken files again and again
            log.error("policy reload rejected, keeping %s: %s", self.current.version, exc)
            return exc
        old = self.current.version
        self.current = compiled
        self._stamp = self._fingerprint()
        if compiled.version != old:
            log.info("policy reloaded: %s -> %s", old, compiled.version)
        return None
