"""How much the explorer's reduction cuts (issue 13): one execution per
Mazurkiewicz trace where the theory says so, and no trace at all between
steps that commute.  Soundness -- the same states and verdicts as dfs -- is
test_dpor_differential.py's and test_dpor_soundness.py's."""

from __future__ import annotations

from pagewalk.explore.api import explore
from pagewalk.explore.program import World, explore_program
from pagewalk.scenario.loader import parse_scenario
from pagewalk.sched.scheduler import INC, Event, R, W, dependent


def one_writer(readers: int, reads: int = 1):
    def program(w: World) -> None:
        x = w.var("x", 0)
        w.thread("writer", lambda: x.write(1))

        def reader() -> None:
            for _ in range(reads):
                x.read()

        for n in range(readers):
            w.thread(f"reader{n}", reader)

    return program


def test_a_writer_and_three_readers_take_one_execution_per_trace():
    # each reader reads before or after the write: 2**3 traces, and a
    # redundant backtrack point would show as a sleep-set-blocked execution
    res = explore_program(one_writer(3), strategy="dpor", stop_first=False)
    assert (res.executions, res.pruned) == (8, 0)


def test_a_write_among_two_readers_reading_twice_takes_nine_executions():
    # the write goes before, between or after each reader's two reads: 3 * 3
    res = explore_program(one_writer(2, reads=2), strategy="dpor", stop_first=False)
    assert (res.executions, res.pruned) == (9, 0)


def event(*footprint: tuple[str, int]) -> Event:
    return Event("access", None, footprint)


def test_two_increments_of_one_key_are_independent():
    assert not dependent(event(("count:7", INC)), event(("count:7", INC)))


def test_an_increment_and_a_read_of_one_key_are_dependent():
    assert dependent(event(("count:7", INC)), event(("count:7", R)))


def test_an_increment_and_a_write_of_one_key_are_dependent():
    assert dependent(event(("count:7", W)), event(("count:7", INC)))


TWO_READERS = """
name = "two_readers"
[[setup]]
op = "mmap"
length = 4096
as = "a"
[[setup]]
op = "mem_write"
addr = "a"
data = "x"
[[thread]]
name = "r1"
ops = [{ op = "mem_read", addr = "a", length = 1 }]
[[thread]]
name = "r2"
ops = [{ op = "mem_read", addr = "a", length = 1 }]
"""


def two_readers(semantics: str):
    scenario = parse_scenario(TWO_READERS, "two_readers.toml")
    return explore(scenario, semantics, "dpor", stop_first=False, shorten=False)


def test_two_readers_of_a_present_page_take_one_execution_under_page_table_lock():
    # seed^ has no split pte locks: both readers' follow_page sections take
    # mm->page_table_lock and change nothing it guards, so they commute
    assert two_readers("seed^").executions == 1


def test_two_readers_of_a_present_page_take_one_execution_with_split_pte_locks():
    # their get_page increments of the page's count commute too
    assert two_readers("2.6.15").executions == 1


def test_page_table_lock_guards_a_pte_the_fault_sets():
    from pagewalk.scenario.runner import Runner

    runner = Runner(parse_scenario(TWO_READERS, "two_readers.toml"), "seed^")
    runner.run_ops(runner.scenario.setup[:1])  # the mmap: no pte yet
    (tsk,) = runner.k.tasks.values()
    mm = tsk.mm
    before = mm.page_table_lock.guards.tobytes()
    runner.run_ops(runner.scenario.setup[1:])  # the write faults the page in
    assert mm.page_table_lock.guards.tobytes() != before
