"""Tasks run on pooled greenlets (carriers): reused across executions,
unwound when abandoned, and holding nothing of an execution once idle."""

from __future__ import annotations

import gc
import weakref

import pytest
from greenlet import greenlet

from pagewalk.explore.engine import Pruned
from pagewalk.explore.program import World, explore_program, run_program
from pagewalk.kernel.locks import down_read, rw_semaphore, up_read
from pagewalk.sched.scheduler import NonPreemptive, Scheduler
from test_explore_program import lost_update


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
    program = lost_update
    before = explore_program(program, strategy="dfs", stop_first=False)
    unwound: list[str] = []
    explore_program(abandons_victim(unwound), strategy="dfs", stop_first=False)
    after = explore_program(program, strategy="dfs", stop_first=False)
    assert unwound
    assert (after.executions, len(after.violations)) == (before.executions, len(before.violations))


class SwitchThenPrune(NonPreemptive):
    """Task 0 for two steps, task 1 for one, then abandon the execution."""

    def choose(self, sched, enabled):
        n = len(sched.steps)
        if n == 3:
            raise Pruned
        return enabled[-1] if n == 2 else enabled[0]


def test_an_abandoned_task_releases_its_semaphore_as_its_own_owner():
    """Regression: the finally block of a task unwound at the end of a run
    released its rw_semaphore as whichever task ran last, so up_read found
    no such reader (a ValueError, formatted into an internal error nobody
    read, in one execution of ten of a three-thread Dirty COW dpor)."""
    world = World()
    sem = rw_semaphore(world, "mmap_sem")
    x = world.var("x", 0)

    def reader() -> None:
        down_read(sem)
        try:
            x.read()
            x.read()
        finally:
            up_read(sem)

    sched = Scheduler(world, SwitchThenPrune())
    world.sched = sched
    held = sched.add_task("holder", reader, "holder")
    sched.add_task("other", lambda: x.read(), "other")
    with pytest.raises(Pruned):
        sched.run()
    assert held.error is None and sem.readers == []
