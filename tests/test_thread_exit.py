"""A thread's `exit` while other threads of the process run: exit_group as
the C has it (each thread holds its own mm reference; the others die at their
next operation), and every interleaving of it seen by DPOR as by DFS."""

from __future__ import annotations

from pagewalk import Kernel
from pagewalk.explore import explore, replay
from pagewalk.scenario.loader import parse_scenario
from pagewalk.scenario.runner import run_scenario

MMAP_VS_EXIT = """
name = "mmap-vs-exit"
[[thread]]
name = "a"
ops = [{op = "mmap", length = 4096, prot = "rw", flags = ["private"], as = "m"}]
[[thread]]
name = "b"
ops = [{op = "exit"}]
"""

A_WRITES = """[[thread]]
name = "a"
ops = [{op = "write", addr = "buf", data = "x"}, {op = "write", addr = "buf+4096", data = "y"}]
"""

WRITER_VS_EXIT = """
name = "writes-vs-exit"
[[setup]]
op = "mmap"
length = 8192
prot = "rw"
as = "buf"
A_WRITES[[thread]]
name = "b"
ops = [{op = "exit"}]
[[check]]
kind = "no_leaks"
""".replace("A_WRITES", A_WRITES)


def _states(text: str, strategy: str) -> set:
    res = explore(parse_scenario(text), strategy=strategy, collect=True, stop_first=False)
    assert res.status == "ok", res.violation
    return set(res.observations)


def test_dpor_reaches_every_final_state_dfs_reaches_when_a_thread_exits():
    # (larger shapes: tests/test_dpor_differential.py; a write against an
    # exit already takes dfs some 45,000 executions)
    assert _states(MMAP_VS_EXIT, "dpor") == _states(MMAP_VS_EXIT, "dfs")


def test_mmap_before_the_exit_returns_an_address_and_is_torn_down():
    ex = replay(parse_scenario(MMAP_VS_EXIT), "0")
    m = next(r for r in ex.result.results if r.step == "m")
    assert m.value is not None and m.signal is None
    assert ex.result.kernel.tasks["p"].mm is None


def test_a_thread_whose_group_exited_first_is_killed_before_its_mmap():
    ex = replay(parse_scenario(MMAP_VS_EXIT), "1")
    m = next(r for r in ex.result.results if r.step == "m")
    assert (m.value, m.errno, m.signal) == (None, None, "SIGKILL")


def test_every_remaining_operation_of_a_killed_thread_reports_sigkill():
    # `run` runs threads in file order: b's exit comes before a's writes
    b_first = WRITER_VS_EXIT.replace(A_WRITES, "").replace("[[check]]", A_WRITES + "[[check]]")
    result = run_scenario(parse_scenario(b_first), check_invariants=True)
    by_step = {r.step: r for r in result.results}
    assert [by_step[s].signal for s in ("a[0]", "a[1]")] == ["SIGKILL", "SIGKILL"]
    assert result.status == "ok"


def test_a_thread_that_runs_before_the_exit_is_not_killed():
    result = run_scenario(parse_scenario(WRITER_VS_EXIT), check_invariants=True)
    by_step = {r.step: r for r in result.results}
    assert [by_step[s].signal for s in ("a[0]", "a[1]")] == [None, None]


def test_exit_waits_for_a_writer_of_mmap_sem_in_another_thread():
    # exit_mm takes mmap_sem for read: a thread in the middle of mmap (write)
    # finishes first, so the exit never sees a half-built vma list.
    sc = parse_scenario(MMAP_VS_EXIT)
    for schedule in ("0.1", "0*2.1", "0*3.1"):
        ex = replay(sc, schedule)
        assert all(c.ok for c in ex.result.checks), schedule


def test_thread_keeps_the_mm_alive_after_the_leader_exits():
    k = Kernel()
    p = k.spawn("p")
    t = k.clone_thread(p)
    a = k.mmap(t, 4096, "rw")
    k.write(t, a, b"x")
    k.exit(p)  # the leader's exit_group
    assert p.mm is None and t.mm is not None and t.group_leader.group_exit
    assert k.peek(t, a, 1) == b"x"
    k.thread_exit(t)
    assert t.mm is None
    k.check_invariants()


def test_mem_read_of_an_exited_process_transfers_nothing():
    k = Kernel()
    p = k.spawn("p")
    q = k.spawn("q")
    a = k.mmap(p, 4096, "rw")
    k.exit(p)
    assert k.mem_read(p, a, 16, by=q) == (0, b"")


def test_get_task_mm_takes_the_task_lock():
    from lockrecorder import LockRecorder
    from pagewalk.kernel.fork import get_task_mm

    k = Kernel()
    p = k.spawn("p")
    k.sched = rec = LockRecorder(k)
    try:
        mm = get_task_mm(p)
    finally:
        k.sched = None
    assert mm is p.mm and mm.mm_users == 2
    assert rec.events == [("lock", "p[1].alloc_lock"), ("unlock", "p[1].alloc_lock")]
