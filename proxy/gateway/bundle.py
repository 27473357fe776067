"""The grant bundle the service publishes, held in memory and cached on disk (pure: no
mitmproxy, no network; :mod:`proxy.gateway.sync` fetches it).

- ``GET /api/v1/bundle`` returns ``{version, policy, digest, grants: [{id, user,
  platform, action, expires_at}]}`` with an ETag; ``version`` is the store's change
  sequence. :func:`parse_bundle` reads it, naming the field when it is malformed.
- ``BundleGrants`` is the access add-on's ``GrantSource``: a dict user → grants, swapped
  in one assignment. Expiry is evaluated at decision time, from ``expires_at``: an expired
  grant never applies, with or without the service.
- ``BundleCache``: every bundle is written to ``VAR_DIR/gateway/bundle.json`` (atomic:
  temporary file, fsync, rename), so a gateway that starts without the service enforces
  the last one it saw (fail-static).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proxy.policy.decide import Grant
from proxy.policy.model import Action

log = logging.getLogger("sargs.gateway.sync")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Bundle:
    version: int
    """The service's change sequence when the bundle was read."""
    policy: str
    """The policy version the service runs."""
    digest: str
    grants: tuple[Grant, ...]
    etag: str = ""


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected an ISO-8601 time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{field}: needs a time zone")
    return parsed


def parse_bundle(data: Any, etag: str = "") -> Bundle:
    """A bundle from its JSON form; ``ValueError`` naming the field when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("bundle: expected an object")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError("version: expected a non-negative integer")
    items = data.get("grants")
    if not isinstance(items, list):
        raise ValueError("grants: expected a list")
    grants = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"grants[{i}]: expected an object")
        try:
            grants.append(Grant(
                id=str(item["id"]), user=str(item["user"]), platform=str(item["platform"]),
                action=Action(item["action"]),
                expires_at=_time(item["expires_at"], f"grants[{i}].expires_at"),
            ))
        except KeyError as exc:
            raise ValueError(f"grants[{i}].{exc.args[0]}: missing") from None
    return Bundle(version, str(data.get("policy", "")), str(data.get("digest", "")),
                  tuple(grants), etag)


def grant_json(grant: Grant) -> dict[str, str]:
    return {"id": grant.id, "user": grant.user, "platform": grant.platform,
            "action": str(grant.action), "expires_at": grant.expires_at.isoformat()}


def bundle_json(bundle: Bundle) -> dict[str, Any]:
    return {"version": bundle.version, "policy": bundle.policy, "digest": bundle.digest,
            "grants": [grant_json(g) for g in bundle.grants], "etag": bundle.etag}


class BundleGrants:
    """The grants of the bundle in force, by user: the access addon's ``GrantSource``."""

    def __init__(self, now: Callable[[], datetime] = _utcnow) -> None:
        self.now = now
        self.bundle: Bundle | None = None
        self._by_user: dict[str, tuple[Grant, ...]] = {}

    def apply(self, bundle: Bundle) -> None:
        by_user: dict[str, list[Grant]] = {}
        for grant in bundle.grants:
            by_user.setdefault(grant.user, []).append(grant)
        self._by_user = {user: tuple(gs) for user, gs in by_user.items()}  # one swap
        self.bundle = bundle

    def active(self, user: str) -> Sequence[Grant]:
        grants = self._by_user.get(user)
        if not grants:
            return ()
        now = self.now()
        return tuple(g for g in grants if g.expires_at > now)


class BundleCache:
    """The last bundle on disk, so a restarted gateway enforces it without the service."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Bundle | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return parse_bundle(data, str(data.get("etag", "")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("ignoring an unreadable bundle cache", extra={"event": {
                "event": "bundle-cache-unreadable", "path": str(self.path), "error": str(exc)}})
            return None

    def save(self, bundle: Bundle) -> None:
        atomic_write(self.path, json.dumps(bundle_json(bundle)).encode())


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
