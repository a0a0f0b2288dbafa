"""Tasks run on pooled greenlets (carriers): reused across executions,
unwound when abandoned, and holding nothing of an execution once idle."""

from __future__ import annotations

import gc
import weakref

from greenlet import greenlet

from pagewalk.explore.program import World, explore_program, run_program
from pagewalk.sched.scheduler import NonPreemptive


def test_the_next_execution_runs_its_tasks_on_the_same_greenlets():
    seen: list[int] = []

    def program(w: World) -> None:
        x = w.var("x", 0)

        def body() -> None:
            seen.append(id(greenlet.getcurrent()))
            x.read()

        w.thread("a", body)
        w.thread("b", body)

    run_program(program, NonPreemptive())
    first = set(seen)
    seen.clear()
    run_program(program, NonPreemptive())
    assert len(first) == 2 and set(seen) == first


def abandons_victim(unwound: list[str]):
    def program(w: World) -> None:
        x = w.var("x", 0)

        def victim() -> None:
            try:
                x.read()
                x.read()
            finally:
                unwound.append("victim")

        def boom() -> None:
            x.read()
            raise ValueError("ends the execution while victim is suspended")

        w.thread("victim", victim)
        w.thread("boom", boom)

    return program


def test_a_task_abandoned_mid_execution_runs_its_finally_blocks():
    unwound: list[str] = []
    res = explore_program(abandons_victim(unwound), strategy="dfs", stop_first=True)
    assert res.status == "violation" and "victim" in unwound


def test_an_idle_carrier_keeps_no_execution_alive():
    class State:
        pass

    refs: list[weakref.ref] = []

    def program(w: World) -> None:
        state = State()
        refs.append(weakref.ref(state))
        x = w.var("x", 0)

        def body() -> None:
            x.read()
            state.seen = True

        w.thread("a", body)

    run_program(program, NonPreemptive())
    gc.collect()
    assert refs and refs[0]() is None


def test_searches_after_an_abandoned_task_give_the_same_result():
    def program(w: World) -> None:
        x = w.var("x", 0)

        def inc() -> None:
            x.write(x.read() + 1)

        w.thread("a", inc)
        w.thread("b", inc)
        w.check(lambda: x.value == 2, "lost update")

    before = explore_program(program, strategy="dfs", stop_first=False)
    unwound: list[str] = []
    explore_program(abandons_victim(unwound), strategy="dfs", stop_first=False)
    after = explore_program(program, strategy="dfs", stop_first=False)
    assert unwound
    assert (after.executions, len(after.violations)) == (before.executions, len(before.violations))
