"""The public program API on the scheduler: users' own tasks, locks and
shared variables, explored like the kernel model."""

from __future__ import annotations

import pytest

from pagewalk.errors import InputError
from pagewalk.explore.program import World, explore_program


def lost_update(w: World) -> None:
    x = w.var("x", 0)

    def inc() -> None:
        x.write(x.read() + 1)

    w.thread("a", inc)
    w.thread("b", inc)
    w.check(lambda: x.value == 2, "lost update")


def locked_update(w: World) -> None:
    x, lock = w.var("x", 0), w.lock("lock")

    def inc() -> None:
        with lock:
            x.write(x.read() + 1)

    w.thread("a", inc)
    w.thread("b", inc)
    w.check(lambda: x.value == 2, "lost update")


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


def check_then_act(w: World) -> None:
    inst, created = w.var("instance", None), w.var("created", 0)

    def get() -> None:
        if inst.read() is None:
            created.write(created.read() + 1)
            inst.write(object())

    w.thread("a", get)
    w.thread("b", get)
    w.check(lambda: created.value == 1, "initialised twice")


@pytest.mark.parametrize("strategy", ["dpor", "dfs"])
def test_unlocked_increment_loses_an_update(strategy: str) -> None:
    res = explore_program(lost_update, strategy)
    assert res.status == "violation"
    assert res.violation.message == "check: lost update"


@pytest.mark.parametrize("strategy", ["dpor", "dfs"])
def test_locked_increment_is_safe_in_every_interleaving(strategy: str) -> None:
    assert explore_program(locked_update, strategy).status == "ok"


def test_dpor_explores_fewer_interleavings_of_the_locked_increment() -> None:
    assert (
        explore_program(locked_update, "dpor").executions
        < explore_program(locked_update, "dfs").executions
    )


def test_opposite_lock_order_deadlocks() -> None:
    res = explore_program(lock_order)
    assert res.violation.message.startswith("deadlock: every task is blocked")


def test_check_then_act_initialises_twice() -> None:
    res = explore_program(check_then_act)
    assert res.violation.message == "check: initialised twice"
    assert res.violation.preemptions == 1


def test_the_trace_names_each_access() -> None:
    trace = explore_program(lost_update).violation.trace
    steps = [(e["task"], e["event"]) for e in trace]
    a_read, a_write = steps.index(("a", "read x")), steps.index(("a", "write x"))
    assert a_read < steps.index(("b", "write x")) < a_write


def test_names_must_be_unique() -> None:
    def twice(w: World) -> None:
        w.var("x")
        w.var("x")
        w.thread("t", lambda: None)

    with pytest.raises(InputError, match="used twice"):
        explore_program(twice)


def test_sleeping_while_holding_a_spinlock_is_reported() -> None:
    """The per-step check: a task may not reach a sleeping point (semaphore,
    cond_resched) with a spinlock held -- "scheduling while atomic"."""
    from pagewalk.kernel.locks import cond_resched

    def program(w: World) -> None:
        lock = w.lock("lock")

        def bad() -> None:
            with lock:
                cond_resched(w)

        w.thread("bad", bad)
        w.thread("other", lambda: None)

    res = explore_program(program)
    assert res.status == "violation"
    assert "scheduling while atomic" in res.violation.message


def test_the_scheduler_imports_nothing_from_the_explorer():
    """Layering: explore/ builds on sched/ and kernel/, never the reverse."""
    import ast
    from pathlib import Path

    import pagewalk

    root = Path(pagewalk.__file__).parent
    upward = []
    for layer in ("sched", "kernel"):
        for path in sorted((root / layer).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    name = "." * node.level + (node.module or "")
                    if name.startswith(("..explore", "pagewalk.explore")):
                        upward.append(f"{layer}/{path.name}: {name}")
    assert upward == []
