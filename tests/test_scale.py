"""pagewalk scale: the virtual-time simulation and its command."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from pagewalk.cli import main
from pagewalk.scale import workloads
from pagewalk.scale.costs import default_costs
from pagewalk.scale.workloads import simulate
from pagewalk.sched.virtual import VirtualScheduler

COSTS = default_costs()


def run(cpus: int, split: bool, pages: int = 32, layout: str = "private", sem: str = "2.6.15"):
    return simulate("pft", layout, cpus, sem, split, pages, COSTS)


def fingerprint(point) -> tuple:
    locks = tuple(
        (c.name, c.acquisitions, c.contentions, c.wait_total, c.hold_total, c.acq_bounces)
        for c in point.locks
    )
    lines = tuple((x.name, x.touches, x.transfers, x.wait) for x in point.lines)
    return (point.faults, point.wall_ps, point.user_ps, point.sys_ps, point.idle_ps, locks, lines)


def test_same_inputs_give_the_same_figures():
    assert fingerprint(run(16, True)) == fingerprint(run(16, True))
    assert fingerprint(run(16, False)) == fingerprint(run(16, False))


def one_cpu_expected(pages: int, split: bool) -> int:
    """Every cost one CPU pays for pft over ``pages`` pages (< 512: one pte
    page), added up from the cost table."""
    c = COSTS
    tables = 3  # pud, pmd and pte page
    allocs = pages + tables
    refills = math.ceil(allocs / c.pcp_batch)
    pagevecs = pages // c.pagevec_size
    rss = c.atomic if split else c.store
    per_fault = (
        c.user_store + c.fault + c.clear_page + c.set_pte + c.pcp_page + c.pagevec_page
    ) + 4 * c.atomic  # mmap_sem down and up, the pte lock and its release
    total = pages * (per_fault + rss)
    total += tables * (c.pcp_page + c.clear_page + 2 * c.atomic)  # under page_table_lock
    total += refills * (2 * c.atomic + c.pcp_batch * c.buddy_page)
    total += pagevecs * (2 * c.atomic + c.pagevec_size * c.lru_page)
    # The first touch of each line finds it cold (owned by no CPU): a transfer.
    lines = {"mmap_sem": c.atomic, "page_table_lock": c.atomic, "rss": rss, "zone": c.atomic}
    if split:
        lines["ptl"] = c.atomic
    if pagevecs:
        lines["lru"] = c.atomic
    total += sum(c.transfer - local for local in lines.values())
    return total


@pytest.mark.parametrize("split", [False, True])
def test_one_cpu_virtual_time_is_the_sum_of_its_costs(split):
    point = run(1, split, pages=100)
    assert point.wall_ps == one_cpu_expected(100, split)
    assert point.user_ps + point.sys_ps == point.wall_ps


def test_one_cpu_split_ptlock_costs_at_most_a_few_percent_more():
    split, glob = run(1, True, 256), run(1, False, 256)
    assert 1.0 < split.wall_ps / glob.wall_ps < 1.04


class CountingScheduler(VirtualScheduler):
    """Counts every lock operation the kernel code makes."""

    made: Counter

    def spin_lock(self, lock, reads_only=False):
        CountingScheduler.made[lock.name.split(":")[0].rsplit(".", 1)[-1]] += 1
        super().spin_lock(lock, reads_only)

    def down_read(self, sem):
        CountingScheduler.made["mmap_sem-R"] += 1
        super().down_read(sem)


@pytest.mark.parametrize("split", [False, True])
def test_lock_stat_acquisitions_equal_the_lock_operations_made(monkeypatch, split):
    CountingScheduler.made = Counter()
    monkeypatch.setattr(workloads, "VirtualScheduler", CountingScheduler)
    point = run(8, split, pages=40)
    stats = {c.name: c.acquisitions for c in point.locks}
    made = CountingScheduler.made
    assert stats["&mm->mmap_sem-R"] == made["mmap_sem-R"] == point.faults
    assert stats["&mm->page_table_lock"] == made["page_table_lock"]
    assert stats.get("&page->ptl", 0) == made["ptl"]
    assert stats["&zone->lock"] == made["&zone->lock"]
    assert stats["&zone->lru_lock"] == made["&zone->lru_lock"]


def test_read_hold_times_have_a_minimum_though_readers_overlap():
    point = run(8, True)
    sem = next(c for c in point.locks if c.name == "&mm->mmap_sem-R")
    assert 0 < sem.hold_min <= sem.hold_total // sem.acquisitions <= sem.hold_max


def test_private_layout_never_contends_on_a_pte_lock():
    point = run(16, True, pages=64)
    ptl = next(c for c in point.locks if c.name == "&page->ptl")
    assert ptl.acquisitions == point.faults and ptl.contentions == 0


def test_shared_layout_contends_on_the_pte_locks():
    point = run(16, True, pages=64, layout="shared")
    ptl = next(c for c in point.locks if c.name == "&page->ptl")
    assert ptl.contentions > point.faults // 20


def test_shared_layout_split_gains_little_at_four_cpus():
    split = run(4, True, pages=128, layout="shared")
    glob = run(4, False, pages=128, layout="shared")
    assert split.faults_per_wall_s / glob.faults_per_wall_s < 1.1


def test_wide_global_lock_collapses_where_split_keeps_scaling():
    one = run(1, False).faults_per_wall_s
    assert run(64, False, sem="seed^-ptl-pushdown").faults_per_wall_s < one
    assert run(64, True).faults_per_wall_s > 4 * one


def test_profile_2_6_14_has_no_split_ptlock():
    point = run(8, False, sem="2.6.14")
    assert not point.split_ptlock
    assert not any(c.name == "&page->ptl" for c in point.locks)


@pytest.mark.parametrize("workload", ["page_fault1", "page_fault2", "page_fault3"])
def test_every_workload_takes_one_fault_per_page(workload):
    point = simulate(workload, "private", 4, "2.6.15", True, 16, COSTS)
    assert point.faults == 64


def test_private_file_faults_copy_the_page():
    anon = simulate("page_fault1", "private", 1, "2.6.15", False, 16, COSTS)
    cow = simulate("page_fault2", "private", 1, "2.6.15", False, 16, COSTS)
    assert cow.sys_ps - anon.sys_ps >= 16 * (COSTS.copy_page - COSTS.clear_page)


# -- the command -----------------------------------------------------------------------
def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["scale", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "cpus", ["1,x", "0", "513", "1,,2", "-4"], ids=["word", "zero", "too-many", "empty", "minus"]
)
def test_bad_cpus_list_is_one_line_exit_2(capsys, cpus):
    code, out, err = cli(capsys, "--cpus", cpus)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--cpus" in err


def test_a_run_larger_than_the_model_machine_is_an_input_error(capsys):
    code, _, err = cli(capsys, "--cpus", "512", "--pages-per-cpu", "4096")
    assert code == 2 and "at most 524288" in err and err.count("\n") == 1


def test_split_ptlock_on_with_2_6_14_is_an_input_error(capsys):
    code, _, err = cli(capsys, "--semantics", "2.6.14", "--split-ptlock", "on", "--cpus", "2")
    assert code == 2 and "4c21e2f2441d" in err and err.count("\n") == 1


def test_unknown_profile_is_an_input_error(capsys):
    code, _, err = cli(capsys, "--semantics", "2.6.99", "--cpus", "2")
    assert code == 2 and "2.6.99" in err


def test_json_has_the_spec_fields(capsys):
    code, out, _ = cli(capsys, "--cpus", "1,4", "--pages-per-cpu", "16", "--json")
    doc = json.loads(out)
    assert code == 0
    assert {"workload", "layout", "semantics", "points", "locks"} <= doc.keys()
    assert [(p["semantics"], p["cpus"], p["split_ptlock"]) for p in doc["points"]] == [
        ("seed^-ptl-pushdown", 1, False),
        ("seed^-ptl-pushdown", 4, False),
        ("2.6.15", 1, False),
        ("2.6.15", 4, True),
    ]
    point_keys = {"cpus", "split_ptlock", "faults", "wall_s", "faults_per_wall_s"}
    assert all(point_keys | {"faults_per_cpu_s"} <= p.keys() for p in doc["points"])
    lock_keys = {"class", "contentions", "acquisitions", "waittime_total_us", "holdtime_total_us"}
    assert doc["locks"] and all(lock_keys <= x.keys() for x in doc["locks"])


def test_json_is_the_same_from_run_to_run_but_the_timing(capsys):
    args = ("--cpus", "8", "--pages-per-cpu", "16", "--json")
    first = json.loads(cli(capsys, *args)[1])
    second = json.loads(cli(capsys, *args)[1])
    first.pop("simulation")
    second.pop("simulation")
    assert first == second


def test_text_output_has_pft_columns_and_lock_stat(capsys):
    code, out, _ = cli(capsys, "--cpus", "2", "--pages-per-cpu", "16", "--semantics", "2.6.15")
    assert code == 0
    header = next(line for line in out.splitlines() if line.lstrip().startswith("Gb"))
    assert header.split()[:9] == [
        "Gb",
        "Rep",
        "Thr",
        "CLine",
        "User",
        "System",
        "Wall",
        "flt/cpu/s",
        "fault/wsec",
    ]
    assert "con-bounces    contentions   waittime-min" in out
    assert "&mm->mmap_sem-R:" in out


def test_plot_writes_an_svg(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "scale.svg"
    code, _, _ = cli(capsys, "--cpus", "1,2,4", "--pages-per-cpu", "8", "--plot", str(path))
    assert code == 0 and "<svg" in path.read_text()


def test_the_same_run_draws_the_same_svg(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    paths = [tmp_path / "a.svg", tmp_path / "b.svg"]
    for path in paths:
        cli(capsys, "--cpus", "1,2", "--pages-per-cpu", "8", "--plot", str(path))
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_plot_needs_svg_or_png(capsys, tmp_path):
    code, _, err = cli(capsys, "--cpus", "1", "--plot", str(tmp_path / "x.jpg"))
    assert code == 2 and ".svg or .png" in err


def test_plot_without_matplotlib_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    code, out, err = cli(capsys, "--cpus", "1", "--plot", str(tmp_path / "x.svg"))
    assert code == 2 and out == ""
    assert "pip install 'pagewalk[plot]'" in err and err.count("\n") == 1


def test_a_kernel_bug_in_a_cpu_is_reported_with_exit_1(capsys, monkeypatch):
    from pagewalk.errors import ModelFailure

    def bug(self, cpu, obj):
        raise ModelFailure("mm/memory.c:test", "injected")

    monkeypatch.setattr(VirtualScheduler, "_fault", bug)
    code, _, err = cli(capsys, "--cpus", "2", "--pages-per-cpu", "4", "--semantics", "2.6.15")
    assert code == 1 and "injected" in err


# -- the scheduler's waiting rules, on two CPUs and one lock -----------------------------
US_PS = 1_000_000


def on_cpus(*bodies):
    """Run each body on its own CPU, all in one mm: (scheduler, lock classes)."""
    from pagewalk.kernel.kernel import Kernel
    from pagewalk.kernel.mm import task_struct

    k = Kernel()
    mm = k.spawn("p").mm
    sched = VirtualScheduler(k, COSTS, split_counters=True)
    for i, body in enumerate(bodies):
        sched.add_task(f"cpu{i}", lambda body=body: body(sched, mm), task_struct(1, f"t{i}", mm, 0))
    k.sched = sched
    try:
        sched.run()
    finally:
        k.sched = None
    return sched, {c.name: c for c in sched.lock_classes()}


def test_a_spinning_cpu_burns_its_wait_as_system_time():
    from pagewalk.kernel.locks import spin_lock, spin_unlock

    def holder(sched, mm):
        spin_lock(mm.page_table_lock)
        sched.user(10 * US_PS)
        spin_unlock(mm.page_table_lock)

    def spinner(sched, mm):
        sched.user(1 * US_PS)
        spin_lock(mm.page_table_lock)
        spin_unlock(mm.page_table_lock)

    sched, classes = on_cpus(holder, spinner)
    cpu = sched.cpus[1]
    assert classes["&mm->page_table_lock"].contentions == 1
    assert cpu.idle == 0 and cpu.sys > 9 * US_PS
    assert cpu.clock == cpu.user + cpu.sys


def test_a_waiting_writer_sleeps_until_the_reader_leaves():
    from pagewalk.kernel.locks import down_read, down_write, up_read, up_write

    def reader(sched, mm):
        down_read(mm.mmap_sem)
        sched.user(10 * US_PS)
        up_read(mm.mmap_sem)

    def writer(sched, mm):
        sched.user(1 * US_PS)
        down_write(mm.mmap_sem)
        up_write(mm.mmap_sem)

    sched, classes = on_cpus(reader, writer)
    reader_cpu, writer_cpu = sched.cpus
    released = reader_cpu.clock
    assert classes["&mm->mmap_sem-W"].contentions == 1
    assert classes["&mm->mmap_sem-W"].acquisitions == 1
    assert writer_cpu.idle > 9 * US_PS and writer_cpu.sys < 2 * US_PS
    assert writer_cpu.clock >= released + COSTS.wakeup
    assert writer_cpu.clock == writer_cpu.user + writer_cpu.sys + writer_cpu.idle


def test_a_released_rwsem_goes_to_the_waiting_writer_before_a_later_reader():
    from pagewalk.kernel.locks import down_read, down_write, up_read, up_write

    order: list[str] = []

    def first(sched, mm):  # reads, a writer queues, then this CPU reads again
        down_read(mm.mmap_sem)
        sched.user(10 * US_PS)
        up_read(mm.mmap_sem)
        down_read(mm.mmap_sem)
        order.append("reader")
        up_read(mm.mmap_sem)

    def second(sched, mm):
        sched.user(1 * US_PS)
        down_write(mm.mmap_sem)
        order.append("writer")
        sched.user(5 * US_PS)
        up_write(mm.mmap_sem)

    on_cpus(first, second)
    assert order == ["writer", "reader"]


def test_a_reader_queues_behind_a_waiting_writer():
    from pagewalk.kernel.locks import down_read, down_write, up_read, up_write

    order: list[str] = []

    def reader(sched, mm):
        down_read(mm.mmap_sem)
        sched.user(10 * US_PS)
        up_read(mm.mmap_sem)

    def writer(sched, mm):
        sched.user(1 * US_PS)
        down_write(mm.mmap_sem)
        order.append("writer")
        up_write(mm.mmap_sem)

    def late_reader(sched, mm):  # arrives while a reader holds and the writer waits
        sched.user(2 * US_PS)
        down_read(mm.mmap_sem)
        order.append("late reader")
        up_read(mm.mmap_sem)

    _, classes = on_cpus(reader, writer, late_reader)
    assert order == ["writer", "late reader"]
    assert classes["&mm->mmap_sem-R"].contentions == 1
