"""The three peer-benchmark workloads written for interleave-test (``interleave_test``).

interleave-test's idiom: a zero-argument *model* builds its state, starts
threads with ``it.spawn``, joins them and asserts; it is run once per
schedule.  Every bytecode of the model's code and every modelled
synchronisation operation is a switch point.  The model's own thread (T0,
which spawns and joins) is scheduled too.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version as _dist_version
from typing import Any

import interleave_test as it

NAME = "interleave-test"
STRATEGIES = {"dfs": False, "random": True, "pct": True}
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("*", "dpor"): "no DPOR in interleave-test 0.1.0 (a roadmap item); its systematic "
    "search is preemption-bounded DFS",
}


def version() -> str:
    return _dist_version("interleave-test")


def _run_two(a: Callable[[], Any], b: Callable[[], Any]) -> None:
    t1, t2 = it.spawn(a), it.spawn(b)
    t1.join()
    t2.join()


# (a) lost update ---------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        temp = self.value
        self.value = temp + 1


def lost_update() -> None:
    counter = Counter()
    _run_two(counter.increment, counter.increment)
    assert counter.value == 2


def lost_update_locked() -> None:
    counter, lock = Counter(), it.Lock()

    def safe_increment() -> None:
        with lock:
            counter.increment()

    _run_two(safe_increment, safe_increment)
    assert counter.value == 2


# (b) lock-order deadlock ---------------------------------------------------------


def lock_order() -> None:
    a, b = it.Lock(), it.Lock()

    def ab() -> None:
        with a, b:
            pass

    def ba() -> None:
        with b, a:
            pass

    _run_two(ab, ba)


def lock_order_fixed() -> None:
    a, b = it.Lock(), it.Lock()

    def ab() -> None:
        with a, b:
            pass

    _run_two(ab, ab)


# (c) check-then-act initialisation -----------------------------------------------


class Lazy:
    def __init__(self) -> None:
        self.instance: object | None = None
        self.created = 0

    def create(self) -> object:
        self.created += 1
        return object()

    def get(self) -> object:
        if self.instance is None:
            self.instance = self.create()
        return self.instance


def check_then_act() -> None:
    lazy = Lazy()
    _run_two(lazy.get, lazy.get)
    assert lazy.created == 1


def check_then_act_locked() -> None:
    lazy, lock = Lazy(), it.Lock()

    def get_locked() -> None:
        with lock:
            lazy.get()

    _run_two(get_locked, get_locked)
    assert lazy.created == 1


MODELS: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
    "lost_update": (lost_update, lost_update_locked),
    "lock_order": (lock_order, lock_order_fixed),
    "check_then_act": (check_then_act, check_then_act_locked),
}


def _outcome(res: Any) -> dict[str, Any]:
    f = res.failure
    if f is None:
        kind = None
    elif f.kind == "deadlock":
        kind = "deadlock"
    elif f.kind == "exception" and isinstance(f.exception, AssertionError):
        kind = "invariant"
    else:
        kind = f"{f.kind}: {f.exception!r}"
    return {"executions": res.schedules_run, "kind": kind, "exhausted": res.exhausted}


def first_bug(workload: str, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    # Default preemption bound (2) for DFS: the tool's idiomatic setting.
    return _outcome(
        it.explore(
            MODELS[workload][0],
            iterations=budget,
            seed=seed,
            strategy=strategy,
            raise_on_failure=False,
        )
    )


def explore_correct(workload: str, strategy: str, budget: int, seed: int) -> dict[str, Any]:
    return _outcome(
        it.explore(
            MODELS[workload][1],
            iterations=budget,
            seed=seed,
            strategy=strategy,
            raise_on_failure=False,
        )
    )
