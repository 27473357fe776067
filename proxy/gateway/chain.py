"""The Sargs addons as one mitmproxy addon, so they cost one slot in mitmproxy's dispatch.

mitmproxy delivers every event to every addon in its chain, whether or not the addon has
a handler: per addon and event a coroutine, a context manager and two generators, and
after each flow event the same again for ``update``. With mitmproxy's ~35 built-in addons
that is most of an event's cost; each Sargs addon added on its own costs about as much per
request as the access decision itself (measured: ``./scripts/bench gateway``).

``Chain(addons)`` is one addon that keeps the Sargs addons' order and behaviour:

- each hook any member implements is bound once, to a dispatcher that calls the members
  that implement it, in order (a plain function when none of them is a coroutine, its
  loop written out for the one-argument events: ``_unrolled``);
- an exception in one member is logged like mitmproxy logs an addon error and the next
  member still runs (``AddonHalt`` and ``OptionsError`` propagate, as in mitmproxy);
- ``load``, ``configure``, ``running`` and ``done`` reach every member; members are
  registered under their own names, so ``master.addons.get("gatewaymetrics")`` works.

Members must not have sub-addons (an ``addons`` attribute) or ``@command``s.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mitmproxy import exceptions, hooks
from mitmproxy.addonmanager import Loader

log = logging.getLogger("sargs.gateway")

_LIFECYCLE = frozenset({"load", "configure", "running", "done", "update"})
_PASS_THROUGH = (exceptions.AddonHalt, exceptions.OptionsError)


def _event_names() -> frozenset[str]:
    """Every mitmproxy event name (hook classes register themselves when imported)."""
    for module in (
        "mitmproxy.addonmanager",  # load
        "mitmproxy.proxy.layers",  # http, tcp, udp, tls, dns, websocket, quic
        "mitmproxy.proxy.server_hooks",  # client and server connections
    ):
        importlib.import_module(module)
    return frozenset(hooks.all_hooks)


def _takes_one_argument(hook: str) -> bool:
    """Whether mitmproxy calls ``hook`` with one argument (every flow and connection
    event does: the hook dataclass has one field)."""
    cls = hooks.all_hooks.get(hook)  # (each a dataclass: mitmproxy's Hook requires it)
    return cls is not None and len(dataclasses.fields(cls)) == 1  # type: ignore[arg-type]


def _name(addon: object) -> str:
    return str(getattr(addon, "name", type(addon).__name__.lower()))


def _report(member: object, hook: str) -> None:
    log.exception("Addon error: %s.%s failed", _name(member), hook)


def _dispatcher(
    hook: str, handlers: list[tuple[object, Callable[..., Any]]]
) -> Callable[..., Any]:
    if len(handlers) == 1:  # mitmproxy's own safecall isolates the only member
        return handlers[0][1]
    if not any(inspect.iscoroutinefunction(fn) for _, fn in handlers):
        if _takes_one_argument(hook):
            return _unrolled(hook, handlers)

        def call(*args: Any) -> None:
            for member, fn in handlers:
                try:
                    fn(*args)
                except _PASS_THROUGH:
                    raise
                except Exception:
                    _report(member, hook)

        return call

    async def call_async(*args: Any) -> None:
        for member, fn in handlers:
            try:
                result = fn(*args)
                if result is not None and inspect.isawaitable(result):
                    await result
            except _PASS_THROUGH:
                raise
            except Exception:
                _report(member, hook)

    return call_async


def _unrolled(hook: str, handlers: list[tuple[object, Callable[..., Any]]]) -> Callable[..., Any]:
    """The plain dispatcher with its loop written out, for one-argument events: one
    ``try`` per member in order, no iteration, no argument tuple (flow events run it
    several times per request; the loop cost about as much as the members' own calls)."""
    names: dict[str, Any] = {"_PASS_THROUGH": _PASS_THROUGH, "_report": _report, "hook": hook}
    lines = ["def call(arg):"]
    for i, (member, fn) in enumerate(handlers):
        names[f"member{i}"], names[f"fn{i}"] = member, fn
        lines += [
            "    try:",
            f"        fn{i}(arg)",
            "    except _PASS_THROUGH:",
            "        raise",
            "    except Exception:",
            f"        _report(member{i}, hook)",
        ]
    exec("\n".join(lines), names)  # noqa: S102  # (our own text: names and indices only)
    call: Callable[..., Any] = names["call"]
    call.__qualname__ = f"Chain.{hook}"
    return call


class Chain:
    """Several addons as one (see the module docs)."""

    name = "sargs"

    def __init__(self, members: Sequence[object]) -> None:
        self.members = list(members)
        for member in self.members:
            if hasattr(member, "addons"):
                raise ValueError(f"{_name(member)}: members of a Chain cannot have sub-addons")
        self.hooks: dict[str, Callable[..., Any]] = {}
        for hook in sorted(_event_names() - _LIFECYCLE):
            handlers = [
                (member, fn) for member in self.members
                if callable(fn := getattr(member, hook, None))
            ]
            if handlers:
                self.hooks[hook] = _dispatcher(hook, handlers)
                setattr(self, hook, self.hooks[hook])  # what mitmproxy's getattr finds

    # -- lifecycle: every member, in order ---------------------------------------------------

    def load(self, loader: Loader) -> None:
        lookup = loader.master.addons.lookup
        for member in self.members:
            name = _name(member)
            if name in lookup:
                raise exceptions.AddonManagerError(  # type: ignore[no-untyped-call]
                    f"An addon called '{name}' already exists."
                )
            if hasattr(member, "load"):
                member.load(loader)
        for member in self.members:
            lookup[_name(member)] = member

    def configure(self, updated: set[str]) -> None:
        for member in self.members:
            if hasattr(member, "configure"):
                try:
                    member.configure(updated)
                except _PASS_THROUGH:  # OptionsError rejects the option, as usual
                    raise
                except Exception:
                    _report(member, "configure")

    async def running(self) -> None:
        await self._each("running")

    async def done(self) -> None:
        await self._each("done")

    async def _each(self, hook: str) -> None:
        for member in self.members:
            fn: Callable[[], Awaitable[None] | None] | None = getattr(member, hook, None)
            if fn is None:
                continue
            try:
                result = fn()
                if result is not None and inspect.isawaitable(result):
                    await result
            except _PASS_THROUGH:
                raise
            except Exception:
                _report(member, hook)
