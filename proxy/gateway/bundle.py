"""The grant bundle the service publishes, held in memory and cached on disk (pure: no
mitmproxy, no network; :mod:`proxy.gateway.sync` fetches it).

- ``GET /api/v1/bundle`` returns ``{version, policy, digest, grants: [{id, user,
  platform, action, expires_at}]}`` with an ETag; ``version`` is the store's change
  sequence. :func:`parse_bundle` reads it, naming the field when it is malformed.
- ``BundleGrants`` is the access add-on's ``GrantSource``: a dict user → grants, swapped
  in one assignment. Expiry is evaluated at decision time, from ``expires_at``: an expired
  grant never applies, with or without the service.
- ``BundleAllowances``: the allowances (permissions to post one text once) of the bundle
  and those installed from a proceed answer; ``take`` uses one at most once here.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from proxy.policy.decide import Grant
from proxy.policy.model import Action
from proxy.store.allowances import Allowance

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
    allowances: tuple[Allowance, ...] = ()
    """Permissions to post one text once (``proxy/store/allowances.py``)."""


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
    found = data.get("allowances", [])  # a service before issue 16 sends none
    if not isinstance(found, list):
        raise ValueError("allowances: expected a list")
    allowed = []
    for i, item in enumerate(found):
        if not isinstance(item, Mapping):
            raise ValueError(f"allowances[{i}]: expected an object")
        try:
            allowed.append(Allowance.from_json(item))
        except KeyError as exc:
            raise ValueError(f"allowances[{i}].{exc.args[0]}: missing") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"allowances[{i}]: {exc}") from None
    return Bundle(version, str(data.get("policy", "")), str(data.get("digest", "")),
                  tuple(grants), etag, tuple(allowed))


def grant_json(grant: Grant) -> dict[str, str]:
    return {"id": grant.id, "user": grant.user, "platform": grant.platform,
            "action": str(grant.action), "expires_at": grant.expires_at.isoformat()}


def bundle_json(bundle: Bundle) -> dict[str, Any]:
    return {"version": bundle.version, "policy": bundle.policy, "digest": bundle.digest,
            "grants": [grant_json(g) for g in bundle.grants], "etag": bundle.etag,
            "allowances": [a.to_json() for a in bundle.allowances]}


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


class BundleAllowances:
    """The allowances of the bundle in force, plus those this gateway installed itself
    from ``/__sargs/api/v1/proceed`` answers, by (user, platform).

    ``take`` finds one whose text hash matches and uses it at once: it is remembered as
    used here (so a later bundle that still lists it, before the service heard of the
    use, does not bring it back) and reported to the service by the caller.
    """

    def __init__(self, now: Callable[[], datetime] = _utcnow) -> None:
        self.now = now
        self._from_bundle: dict[tuple[str, str], tuple[Allowance, ...]] = {}
        self._installed: dict[str, Allowance] = {}
        self._used: dict[str, datetime] = {}
        """Ids used here → their expiry (forgotten once past it)."""

    def apply(self, bundle: Bundle) -> None:
        by_key: dict[tuple[str, str], list[Allowance]] = {}
        for allowance in bundle.allowances:
            by_key.setdefault((allowance.user, allowance.platform), []).append(allowance)
        self._from_bundle = {k: tuple(v) for k, v in by_key.items()}  # one swap
        listed = {a.id for a in bundle.allowances}
        now = self.now()
        # an installed one the bundle lists is the bundle's now; drop the expired
        self._installed = {i: a for i, a in self._installed.items()
                           if i not in listed and a.expires_at > now}
        self._used = {i: t for i, t in self._used.items() if t > now}

    def install(self, allowance: Allowance) -> None:
        """An allowance the service just issued through this gateway (no wait for the
        bundle: the user's post may follow at once)."""
        if allowance.id not in self._used:
            self._installed[allowance.id] = allowance

    def take(self, user: str, platform: str, text_hash: str, rules: set[str]
             ) -> Allowance | None:
        """Use an active allowance of this user and platform for this text hash covering
        ``rules``; ``None`` when there is none (the post is refused as before)."""
        now = self.now()
        candidates = [*self._from_bundle.get((user, platform), ()),
                      *self._installed.values()]
        for allowance in candidates:
            if (allowance.user == user and allowance.platform == platform
                    and allowance.text_hash == text_hash and allowance.id not in self._used
                    and allowance.issued_at - _SKEW <= now < allowance.expires_at
                    and rules <= set(allowance.rules)):
                self._used[allowance.id] = allowance.expires_at
                self._installed.pop(allowance.id, None)
                return allowance
        return None

    def __len__(self) -> int:
        """How many are held and not used here (expired ones included until the next
        bundle)."""
        ids = {a.id for group in self._from_bundle.values() for a in group}
        return len((ids | set(self._installed)) - set(self._used))


_SKEW = timedelta(seconds=30)
"""Clocks of service and gateway may differ a little: an allowance issued "in the future"
by this much is still taken."""


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
