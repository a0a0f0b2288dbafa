"""The three peer-benchmark workloads written for frontrun (``frontrun.explore``).

frontrun's idiom: ``setup`` builds fresh shared state per execution, each worker
is a plain function of that state, ``invariant`` is checked after all workers
finish.  Plain ``threading.Lock`` objects are used; frontrun makes them
cooperative.  Shared-memory accesses are found at the bytecode level.

Must run under the ``frontrun`` CLI wrapper (it sets ``FRONTRUN_ACTIVE=1`` and
``LD_PRELOAD``s its I/O library); otherwise ``frontrun.explore`` raises
``RuntimeError``.  ``bench_peers.py`` launches this module that way.

Options common to every call: ``detect_io=False`` (the workloads do no I/O)
and ``reproduce_on_failure=0`` (frontrun would otherwise replay a found
counterexample 10 more times; those replays are not counted in
``num_explored``, so they would distort the time to first bug).
"""

from __future__ import annotations

import threading
from importlib.metadata import version as _dist_version
from typing import Any

import frontrun

NAME = "frontrun"
STRATEGIES = {"dpor": False, "random": True}
UNSUPPORTED: dict[tuple[str, str], str] = {}
COMMON: dict[str, Any] = {"detect_io": False, "reproduce_on_failure": 0}


def version() -> str:
    return _dist_version("frontrun")


# (a) lost update ---------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def increment(self) -> None:
        temp = self.value
        self.value = temp + 1

    def increment_locked(self) -> None:
        with self.lock:
            temp = self.value
            self.value = temp + 1


# (b) lock-order deadlock ---------------------------------------------------------


class TwoLocks:
    def __init__(self) -> None:
        self.a = threading.Lock()
        self.b = threading.Lock()


def take_ab(s: TwoLocks) -> None:
    with s.a, s.b:
        pass


def take_ba(s: TwoLocks) -> None:
    with s.b, s.a:
        pass


# (c) check-then-act initialisation -----------------------------------------------


class Lazy:
    def __init__(self) -> None:
        self.instance: object | None = None
        self.created = 0
        self.lock = threading.Lock()

    def create(self) -> object:
        self.created += 1
        return object()

    def get(self) -> object:
        if self.instance is None:
            self.instance = self.create()
        return self.instance

    def get_locked(self) -> object:
        with self.lock:
            if self.instance is None:
                self.instance = self.create()
            return self.instance


# workload -> (buggy, correct): keyword arguments for frontrun.explore
WORKLOADS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "lost_update": (
        {
            "setup": Counter,
            "workers": Counter.increment,
            "count": 2,
            "invariant": lambda c: c.value == 2,
        },
        {
            "setup": Counter,
            "workers": Counter.increment_locked,
            "count": 2,
            "invariant": lambda c: c.value == 2,
        },
    ),
    "lock_order": (
        {"setup": TwoLocks, "workers": [take_ab, take_ba], "invariant": lambda s: True},
        {"setup": TwoLocks, "workers": [take_ab, take_ab], "invariant": lambda s: True},
    ),
    "check_then_act": (
        {"setup": Lazy, "workers": Lazy.get, "count": 2, "invariant": lambda z: z.created == 1},
        {
            "setup": Lazy,
            "workers": Lazy.get_locked,
            "count": 2,
            "invariant": lambda z: z.created == 1,
        },
    ),
}


def _kind(res: Any) -> str | None:
    if res.property_holds:
        return None
    if res.property_holds is None:
        return "inconclusive"
    text = (res.explanation or "").lower()
    return "deadlock" if "deadlock" in text else "invariant"


def _options(strategy: str, budget: int, seed: int, stop_first: bool) -> dict[str, Any]:
    if strategy == "dpor":
        # stop_first=False: exhaustive, so no preemption bound (default is 2).
        opts: dict[str, Any] = {"max_executions": budget, "stop_on_first": stop_first}
        if not stop_first:
            opts["preemption_bound"] = None
        return opts
    return {"strategy": "random", "max_attempts": budget, "seed": seed}


def first_bug(workload: str, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    res = frontrun.explore(
        **WORKLOADS[workload][0], **COMMON, **_options(strategy, budget, seed, True)
    )
    return {"executions": res.num_explored, "kind": _kind(res), "exhausted": None}


def explore_correct(workload: str, strategy: str, budget: int, seed: int) -> dict[str, Any]:
    res = frontrun.explore(
        **WORKLOADS[workload][1], **COMMON, **_options(strategy, budget, seed, False)
    )
    exhausted = strategy == "dpor" and res.property_holds is True and res.num_explored < budget
    return {"executions": res.num_explored, "kind": _kind(res), "exhausted": exhausted}
