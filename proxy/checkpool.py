"""Draft checks off the event loop: a process pool, a time budget, one engine per worker
per policy version.

The rules engine is pure Python and CPU-bound: on the event loop, one long draft stalls
every other request of the process (in ``sargs run`` the proxy's too), and threads would
not help (the GIL). So checks run in a ``ProcessPoolExecutor`` sized from the CPUs this
process may use, under a CPU-time budget::

    pool = CheckPool(lambda: state.current, budget=2.0)
    result = await pool.check(request)  # CheckResult, or CheckTimeout / CheckUnavailable
    await pool.close()

- Each worker builds the engine once per policy version: a task names the version (the
  policy's digest); a worker that has no engine for it answers "need the policy", and the
  pool sends the pickled policy once with the retried task (pickled once per version).
  A worker keeps the engines of the last two versions.
- The budget is CPU time in the worker (``ITIMER_PROF``): a check past it stops at the
  next Python bytecode and ``check`` raises ``CheckTimeout``. Work that does not return
  to Python in time (one long C call) is caught by a wall-clock deadline in the parent
  (the budget times the queue depth, plus ``grace``): the answer is ``CheckTimeout`` at
  once, and the pool is recycled (a new executor takes the next checks; the old one is
  shut down and its stuck worker exits when its call returns).
- A worker that dies (``BrokenProcessPool``) gets the pool recycled too, and that check
  ``CheckUnavailable``.
- Two lanes, each with its own workers: drafts up to ``SHORT_DRAFT`` characters, and
  longer ones. A flood of long (slow) drafts queues only behind itself; the posts people
  type are still answered in milliseconds.
- At most ``QUEUE_PER_WORKER`` checks per worker wait or run at once in a lane (32 short,
  4 long); past that ``check`` raises ``CheckUnavailable`` at once (a flood cannot queue
  unbounded work, and a queued check never waits longer than the deadline).
- Workers come from the ``forkserver`` start method: a clean process forked from a server
  that imported this module once (forking the service itself, with its threads, could
  copy a held lock into the child). They ignore SIGINT (Ctrl-C is the parent's to
  handle) and exit when the process that started them ends, however it ends. The long
  lane's workers run at a lower CPU priority (``NICENESS``): when long drafts keep every
  core busy, pages through the gateway, the service's answers and the short drafts' checks
  still come first.

The pool starts its workers at the first check, or when ``start()`` is awaited.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.runtime import Compiled

DEFAULT_BUDGET = 2.0
"""CPU seconds one check may take."""
DEFAULT_GRACE = 10.0
"""Wall-clock seconds past the budget before the parent gives up on a worker (covers a
worker's first start and engine build on a loaded machine)."""
KEPT_VERSIONS = 2
QUEUE_PER_WORKER = {"short": 32, "long": 4}
"""Checks that may wait or run at once per worker, by lane: short drafts cost
milliseconds, long ones up to the budget."""
SHORT_DRAFT = 3_000
"""Drafts up to this many characters (posts as people write them) are checked by workers
of their own: long drafts, however many, never make a short one wait."""


class CheckTimeout(Exception):
    """The check took longer than the budget; nothing was decided."""


class CheckUnavailable(Exception):
    """No worker could run the check (one died); the pool has been recycled."""


def workers_for_this_machine() -> int:
    """The CPUs this process may run on (its affinity), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --- in the worker process ------------------------------------------------------------------

_NEED_POLICY = "need-policy"
_OVER_BUDGET = "over-budget"
_OK = "ok"
_engines: dict[str, Engine] = {}
"""This worker's engines, by policy digest (the last KEPT_VERSIONS)."""


class _OverBudget(BaseException):
    """Raised in the worker by the CPU timer; BaseException so no ``except Exception`` in
    the engine can swallow it."""


def _over_budget(signum: int, frame: Any) -> None:
    raise _OverBudget


NICENESS = {"short": 0, "long": 5}
"""CPU priority of each lane's workers: long drafts are checked at a lower priority than
the process that serves pages (and than the short drafts people type), so a machine busy
with them still gives the proxy and the service the CPU first."""


def _start_worker(niceness: int = 0) -> None:
    if niceness:
        os.nice(niceness)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _over_budget)
    parent = multiprocessing.parent_process()
    if parent is not None:  # end with the service, however it ended (SIGKILL included)
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True,
                         name="sargs-parent-watch").start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _run(digest: str, version: str, policy: bytes | None, request: CheckRequest,
         budget: float) -> tuple[str, CheckResult | None]:
    engine = _engines.get(digest)
    if engine is None:
        if policy is None:
            return _NEED_POLICY, None
        engine = Engine.from_policy(pickle.loads(policy))  # noqa: S301 - from our own parent process
        _engines[digest] = engine
        while len(_engines) > KEPT_VERSIONS:
            del _engines[next(iter(_engines))]
        # The engines live as long as the worker: their objects (lexicons, tables) are
        # left out of the collector's passes, which a check that allocates much would
        # otherwise pay for (64 KB of one word repeated: 100 ms instead of 35).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
    try:
        signal.setitimer(signal.ITIMER_PROF, budget)
        try:
            result = engine.check(request, version)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except _OverBudget:
        return _OVER_BUDGET, None
    return _OK, result


# --- in the service or gateway process -------------------------------------------------------


@dataclass
class _Lane:
    """Workers of their own for one kind of draft, and the checks waiting for them."""

    name: str
    executor: ProcessPoolExecutor | None = None
    pending: int = 0

    @property
    def queue(self) -> int:
        return QUEUE_PER_WORKER[self.name]


class CheckPool:
    """Checks drafts in worker processes against the policy ``policy()`` returns now."""

    def __init__(self, policy: Callable[[], Compiled], *, workers: int | None = None,
                 budget: float = DEFAULT_BUDGET, grace: float = DEFAULT_GRACE) -> None:
        if budget <= 0:
            raise ValueError("the check budget must be positive")
        self.policy = policy
        self.workers = workers or workers_for_this_machine()
        """Worker processes per lane."""
        self.budget = budget
        self.grace = grace
        self.recycled = 0
        """How many times a stuck or dead worker made a lane start afresh."""
        self._lanes = {name: _Lane(name) for name in QUEUE_PER_WORKER}
        self._pickled: dict[str, bytes] = {}

    @property
    def pending(self) -> int:
        """Checks submitted and not yet answered."""
        return sum(lane.pending for lane in self._lanes.values())

    def _pool(self, lane: _Lane) -> ProcessPoolExecutor:
        if lane.executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            lane.executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start_worker,
                initargs=(NICENESS[lane.name],))
        return lane.executor

    def _recycle(self, lane: _Lane, executor: ProcessPoolExecutor) -> None:
        if lane.executor is executor:
            lane.executor = None
            self.recycled += 1
        # Checks already queued on it still finish there; its workers exit after them.
        executor.shutdown(wait=False)

    async def start(self) -> None:
        """Start every lane's workers and build their engines now, so that the first
        checks do not wait for it (a second or more on a busy machine)."""
        compiled = self.policy()
        policy = self._policy_bytes(compiled)
        loop = asyncio.get_running_loop()
        warm = CheckRequest(text="")
        await asyncio.gather(*(
            loop.run_in_executor(self._pool(lane), _run, compiled.loaded.digest,
                                 compiled.version, policy, warm, self.budget)
            for lane in self._lanes.values() for _ in range(self.workers)))

    def _policy_bytes(self, compiled: Compiled) -> bytes:
        digest = compiled.loaded.digest
        data = self._pickled.get(digest)
        if data is None:
            data = pickle.dumps(compiled.loaded.policy)
            self._pickled[digest] = data
            while len(self._pickled) > KEPT_VERSIONS:
                del self._pickled[next(iter(self._pickled))]
        return data

    async def check(self, request: CheckRequest) -> CheckResult:
        """The engine's answer for ``request`` under the current policy.

        Raises ``CheckTimeout`` past the budget, ``CheckUnavailable`` when a worker died."""
        lane = self._lanes["long" if len(request.text) > SHORT_DRAFT else "short"]
        if lane.pending >= self.workers * lane.queue:
            raise CheckUnavailable("too many checks at once; try again in a moment")
        lane.pending += 1
        try:
            return await self._check(lane, request)
        finally:
            lane.pending -= 1

    async def _check(self, lane: _Lane, request: CheckRequest) -> CheckResult:
        compiled = self.policy()
        loop = asyncio.get_running_loop()
        # A check may wait behind a full queue: its deadline counts that wait too.
        deadline = self.budget * (lane.queue + 1) + self.grace
        policy: bytes | None = None
        for _ in range(2):
            executor = self._pool(lane)
            future = loop.run_in_executor(executor, _run, compiled.loaded.digest,
                                          compiled.version, policy, request, self.budget)
            try:
                status, result = await asyncio.wait_for(future, deadline)
            except TimeoutError:
                self._recycle(lane, executor)
                raise CheckTimeout(self._late()) from None
            except BrokenProcessPool:
                self._recycle(lane, executor)
                raise CheckUnavailable("a check worker stopped; try again") from None
            if status == _OK and result is not None:
                return result
            if status == _OVER_BUDGET:
                raise CheckTimeout(self._late())
            policy = self._policy_bytes(compiled)  # _NEED_POLICY: send it with the retry
        raise CheckUnavailable("a check worker did not take the policy")

    def _late(self) -> str:
        return (f"the check took longer than its budget ({self.budget:g} s of CPU); "
                "nothing was decided")

    async def close(self) -> None:
        """Stop the workers (a running check finishes first)."""
        for lane in self._lanes.values():
            executor, lane.executor = lane.executor, None
            if executor is not None:
                await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
