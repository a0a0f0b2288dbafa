"""The three peer-benchmark workloads written for pagewalk (``pagewalk.explore.program``).

Each program builds its own state in ``w`` and is run afresh per execution.
Every ``Var.read``/``Var.write`` and every lock acquisition is a schedule point;
the code between them is atomic, so a thread of ``lost_update`` is 2 steps,
not the ~10 bytecodes the peers interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version as _dist_version
from typing import Any

from pagewalk.explore.program import World, explore_program

NAME = "pagewalk"
# strategy -> randomized?  ("random" is PCT, depth 3, in pagewalk)
STRATEGIES = {"dpor": False, "dfs": False, "random": True}
UNSUPPORTED: dict[tuple[str, str], str] = {}


def version() -> str:
    return _dist_version("pagewalk")


# (a) lost update ---------------------------------------------------------------


def lost_update(w: World) -> None:
    count = w.var("count", 0)

    def inc() -> None:
        count.write(count.read() + 1)

    w.thread("a", inc)
    w.thread("b", inc)
    w.check(lambda: count.value == 2, "lost update")


def lost_update_locked(w: World) -> None:
    count, lock = w.var("count", 0), w.lock("lock")

    def inc() -> None:
        with lock:
            count.write(count.read() + 1)

    w.thread("a", inc)
    w.thread("b", inc)
    w.check(lambda: count.value == 2, "lost update")


# (b) lock-order deadlock ---------------------------------------------------------


def lock_order(w: World) -> None:
    a, b = w.lock("a"), w.lock("b")

    def ab() -> None:
        with a, b:
            pass

    def ba() -> None:
        with b, a:
            pass

    w.thread("ab", ab)
    w.thread("ba", ba)


def lock_order_fixed(w: World) -> None:
    a, b = w.lock("a"), w.lock("b")

    def ab() -> None:
        with a, b:
            pass

    w.thread("ab1", ab)
    w.thread("ab2", ab)


# (c) check-then-act initialisation -----------------------------------------------


def check_then_act(w: World) -> None:
    instance, created = w.var("instance", None), w.var("created", 0)

    def create() -> object:
        created.write(created.read() + 1)
        return object()

    def get() -> None:
        if instance.read() is None:
            instance.write(create())

    w.thread("a", get)
    w.thread("b", get)
    w.check(lambda: created.value == 1, "initialised twice")


def check_then_act_locked(w: World) -> None:
    instance, created, lock = w.var("instance", None), w.var("created", 0), w.lock("lock")

    def create() -> object:
        created.write(created.read() + 1)
        return object()

    def get() -> None:
        with lock:
            if instance.read() is None:
                instance.write(create())

    w.thread("a", get)
    w.thread("b", get)
    w.check(lambda: created.value == 1, "initialised twice")


PROGRAMS: dict[str, tuple[Callable[[World], None], Callable[[World], None]]] = {
    "lost_update": (lost_update, lost_update_locked),
    "lock_order": (lock_order, lock_order_fixed),
    "check_then_act": (check_then_act, check_then_act_locked),
}


def _kind(res: Any) -> str | None:
    if res.violation is None:
        return None
    return "deadlock" if res.violation.message.startswith("deadlock") else "invariant"


def first_bug(workload: str, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    res = explore_program(
        PROGRAMS[workload][0], strategy, max_executions=budget, stop_first=True, seed=seed
    )
    return {"executions": res.executions, "kind": _kind(res), "exhausted": res.status == "ok"}


def explore_correct(workload: str, strategy: str, budget: int, seed: int) -> dict[str, Any]:
    res = explore_program(
        PROGRAMS[workload][1], strategy, max_executions=budget, stop_first=False, seed=seed
    )
    return {"executions": res.executions, "kind": _kind(res), "exhausted": res.status == "ok"}
