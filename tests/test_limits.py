"""Robustness bounds (issue 10): walks over huge untouched mappings cost the
page tables present, not the size, and give what the page-by-page loop gives;
transfers have a documented limit and large results are summarised."""

from __future__ import annotations

import hashlib
import json

import pytest

import pagewalk.kernel.memory as memory
import pagewalk.kernel.procfs as procfs
from lockrecorder import LockRecorder
from pagewalk import Kernel, parse_scenario, run_scenario
from pagewalk.cli import main
from pagewalk.errors import InputError
from pagewalk.kernel.procfs import numa_maps
from pagewalk.scenario.loader import MAX_TRANSFER
from pagewalk.scenario.report import render_text
from pagewalk.scenario.summary import DATA_SHOWN_MAX

PAGE = 4096
GiB = 1 << 30
TiB = 1 << 40


def _slowly(k: Kernel, action) -> tuple:
    """Run ``action`` with a recording scheduler hook installed: the walks
    then take the C's path, page by page (numa_maps) or block by block
    (unmap_vmas), as they must when an explorer could interleave.  Returns
    what ``action`` returned and the recorder."""
    k.sched = rec = LockRecorder(k)
    try:
        return action(), rec
    finally:
        k.sched = None


def _scattered(k: Kernel, p, size: int) -> int:
    """A private mapping of ``size`` with pages written and read in a few
    pte tables, pmd tables and pud tables, the rest untouched."""
    a = k.mmap(p, size, "rw")
    for off in (0, 5 * PAGE, (2 << 20) + PAGE, GiB - PAGE, GiB + (7 << 20), size - PAGE):
        k.write(p, a + off, b"w")
    for off in (3 * PAGE, GiB + (9 << 20), (size // 2) & ~(PAGE - 1)):
        k.read(p, a + off, 1)  # ZERO_PAGE ptes
    return a


def _state(k: Kernel, p) -> tuple:
    """What a teardown leaves behind: every frame's counts and flags, the
    table counts, and the frames the next allocations get (the free lists'
    order)."""
    frames = tuple((pg._count, pg._mapcount, pg.flags) for pg in k.alloc.mem_map)
    b = k.mmap(p, 16 * PAGE, "rw")
    for i in range(16):
        k.write(p, b + i * PAGE, b"n")
    after = tuple(k.page(p, b + i * PAGE).pfn for i in range(16))
    return frames, k.nr_page_table_pages, p.mm.nr_ptes, k.page_tables(p), after


# --- numa_maps ---------------------------------------------------------------------
def _numa_text(profile: str, slow: bool) -> str:
    k = Kernel(profile)
    p = k.spawn("p")
    _scattered(k, p, 3 * GiB)
    k.mmap(p, 64 * PAGE, "r")  # never touched
    return _slowly(k, lambda: numa_maps(p))[0] if slow else numa_maps(p)


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
def test_numa_maps_skipping_missing_tables_prints_what_the_page_loop_prints(profile):
    fast = _numa_text(profile, slow=False)
    # The 2.6.15 loop, page by page (the 2.6.14 one holds page_table_lock and
    # has no schedule point, so it skips even then): the counts are the same.
    assert fast == _numa_text("2.6.15", slow=True)
    assert "Pages=9" in fast  # six written pages, three zero-page ptes


def test_numa_maps_of_a_terabyte_mapping_looks_up_only_pages_with_tables(monkeypatch):
    k = Kernel("2.6.15")
    p = k.spawn("p")
    a = k.mmap(p, TiB, "r")
    k.mem_write(p, a + 300 * GiB, b"x")  # one pte table (512 ptes)
    calls = []
    real = procfs.follow_page
    monkeypatch.setattr(procfs, "follow_page", lambda *args: calls.append(1) or real(*args))
    assert " Pages=1 " in numa_maps(p)
    assert len(calls) == 512


def test_numa_maps_keeps_a_schedule_point_per_page_when_exploring():
    k = Kernel("2.6.15")
    p = k.spawn("p")
    k.mmap(p, 64 * PAGE, "r")  # no table at all
    _, rec = _slowly(k, lambda: numa_maps(p))
    assert rec.events.count(("cond_resched", "")) == 64


# --- teardown ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "teardown",
    [
        lambda k, p, a, size: k.munmap(p, a, size),
        lambda k, p, a, size: k.munmap(p, a + GiB - (5 << 20), GiB + (13 << 20)),
        lambda k, p, a, size: k.madvise(p, a, size, "dontneed"),
    ],
    ids=["munmap", "munmap-middle", "dontneed"],
)
def test_teardown_skipping_empty_blocks_leaves_what_the_block_loop_leaves(teardown):
    def run(slow: bool) -> tuple:
        k = Kernel()
        p = k.spawn("p")
        size = 3 * GiB
        a = _scattered(k, p, size)
        if slow:
            assert _slowly(k, lambda: teardown(k, p, a, size))[0] == 0
        else:
            assert teardown(k, p, a, size) == 0
        return _state(k, p)

    assert run(slow=False) == run(slow=True)


def test_exit_skipping_empty_blocks_leaves_what_the_block_loop_leaves():
    def run(slow: bool) -> tuple:
        k = Kernel()
        p = k.spawn("p")
        _scattered(k, p, 3 * GiB)
        q = k.spawn("q")
        if slow:
            _slowly(k, lambda: k.exit(p))
        else:
            k.exit(p)
        return _state(k, q)

    assert run(slow=False) == run(slow=True)


def test_munmap_of_an_untouched_64_tib_mapping_zaps_no_empty_block(monkeypatch):
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 64 * TiB, "r")
    calls = []
    real = memory.unmap_page_range
    monkeypatch.setattr(memory, "unmap_page_range", lambda *args: calls.append(1) or real(*args))
    assert k.munmap(p, a, 64 * TiB) == 0
    # at most the partial blocks at the ends of the missing-table runs
    assert len(calls) <= 2


def test_munmap_keeps_a_schedule_point_per_block_when_exploring():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 16 * memory.ZAP_BLOCK_SIZE, "r")  # no table at all
    ret, rec = _slowly(k, lambda: k.munmap(p, a, 16 * memory.ZAP_BLOCK_SIZE))
    assert ret == 0
    assert rec.events.count(("cond_resched", "")) == 16


# --- transfer limits (loader) ------------------------------------------------------
def _op_scenario(op_lines: str) -> str:
    return f"""
name = "t"
[[setup]]
op = "mmap"
length = 16384
as = "m"
[[setup]]
{op_lines}
"""


@pytest.mark.parametrize(
    ("op_lines", "field"),
    [
        ('op = "read"\naddr = "m"\nlength = 1099511627776', "length"),
        ('op = "mem_read"\naddr = "m"\nlength = 67108865', "length"),
        ('op = "gup"\naddr = "m"\npages = 16385', "pages"),
    ],
    ids=["read", "mem_read", "gup"],
)
def test_a_transfer_past_the_limit_is_an_input_error_naming_file_and_field(op_lines, field):
    with pytest.raises(InputError) as err:
        parse_scenario(_op_scenario(op_lines), "big.toml")
    assert err.value.where == f"big.toml: setup[1].{field}"
    assert "at most" in err.value.detail and "\n" not in str(err.value)


@pytest.mark.parametrize("op", ["write", "mem_write"])
def test_data_past_the_limit_is_an_input_error_naming_file_and_field(op):
    data = "x" * (MAX_TRANSFER + 1)
    with pytest.raises(InputError) as err:
        parse_scenario(_op_scenario(f'op = "{op}"\naddr = "m"\ndata = "{data}"'), "big.toml")
    assert err.value.where == "big.toml: setup[1].data"


def test_an_expect_longer_than_the_limit_is_an_input_error():
    expect = "x" * (MAX_TRANSFER + 1)
    text = _op_scenario(f'op = "read"\naddr = "m"\nlength = 1\nexpect = "{expect}"')
    with pytest.raises(InputError) as err:
        parse_scenario(text, "big.toml")
    assert err.value.where == "big.toml: setup[1].expect"


def test_transfers_at_the_limit_are_accepted():
    scenario = parse_scenario(
        _op_scenario(f'op = "mem_read"\naddr = "m"\nlength = {MAX_TRANSFER}'), "ok.toml"
    )
    assert scenario.setup[1].args["length"] == MAX_TRANSFER == 64 << 20


def test_a_terabyte_read_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "tib.toml"
    path.write_text(_op_scenario('op = "read"\naddr = "m"\nlength = 1099511627776'))
    assert main(["run", "--json", str(path)]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "error"
    assert err.count("\n") == 1 and "setup[1].length" in err


# --- large results are summarised -----------------------------------------------------
def _read_result(length: int, expect: str | None = None) -> tuple:
    """Write "hello" at offset 4000 of a fresh mapping, then read ``length``
    bytes from its start."""
    read = f'op = "read"\naddr = "m"\nlength = {length}'
    if expect is not None:
        read += f'\nexpect = "{expect}"'
    text = _op_scenario('op = "write"\naddr = "m+4000"\ndata = "hello"') + "[[setup]]\n" + read
    scenario = parse_scenario(text, "r.toml")
    return scenario, run_scenario(scenario)


def test_a_result_up_to_a_page_shows_its_bytes():
    _, result = _read_result(DATA_SHOWN_MAX)
    shown = result.as_json()["results"][-1]
    assert shown["data"] == "\0" * 4000 + "hello" + "\0" * 91
    assert "data_sha256" not in shown


def test_a_result_past_a_page_shows_length_and_sha256_instead_of_bytes():
    _, result = _read_result(DATA_SHOWN_MAX + 1)
    shown = result.as_json()["results"][-1]
    read = bytes(4000) + b"hello" + bytes(DATA_SHOWN_MAX + 1 - 4005)
    assert shown["data"] is None
    assert shown["data_length"] == DATA_SHOWN_MAX + 1
    assert shown["data_sha256"] == hashlib.sha256(read).hexdigest()


def test_the_text_report_summarises_a_long_result():
    scenario, result = _read_result(3 * PAGE)
    row = render_text(scenario, result).splitlines()[4]
    digest = hashlib.sha256(result.results[-1].data).hexdigest()
    assert row.endswith(f"...' ({3 * PAGE} bytes, sha256 {digest[:16]})")
    assert len(row) < 300


def test_expect_on_a_long_read_that_matches_passes():
    expect = "\\u0000" * 4000 + "hello" + "\\u0000" * 3
    _, result = _read_result(4008, expect)
    assert result.status == "ok" and not result.checks


def test_expect_on_a_long_read_that_differs_names_the_first_difference():
    expect = "\\u0000" * 4000 + "help!" + "\\u0000" * 3
    _, result = _read_result(4008, expect)
    (check,) = result.checks
    assert (check.kind, check.ok) == ("expect", False)
    assert "first difference at offset 4003: b'lo" in check.message
    assert len(check.message) < 200


# --- input errors found while running name the step ------------------------------------
def _run_error(text: str) -> InputError:
    with pytest.raises(InputError) as err:
        run_scenario(parse_scenario(text, "s.toml"))
    return err.value


def test_an_operation_of_an_exited_process_names_its_step():
    err = _run_error('name = "t"\n[[setup]]\nop = "exit"\n[[setup]]\nop = "mmap"\nlength = 4096\n')
    assert str(err) == "s.toml: setup[1]: process 'p' has exited"


def test_a_mem_read_by_an_exited_process_names_its_step():
    err = _run_error(
        'name = "t"\n[[process]]\nname = "p"\n[[process]]\nname = "d"\n'
        '[[setup]]\nop = "mmap"\nlength = 4096\nas = "m"\n'
        '[[setup]]\nop = "exit"\nprocess = "d"\n'
        '[[setup]]\nop = "mem_read"\naddr = "m"\nlength = 1\nby = "d"\n'
    )
    assert str(err) == "s.toml: setup[2]: process 'd' has exited"


def test_a_repeated_fork_names_its_step():
    err = _run_error(
        'name = "t"\n[[thread]]\nname = "t"\nrepeat = 2\nops = [{op = "fork", as = "c"}]\n'
    )
    assert str(err) == "s.toml: thread[t].ops[0]: process 'c' already exists"


def test_a_check_on_a_mapping_whose_mmap_failed_names_the_check():
    err = _run_error(
        'name = "t"\n[[setup]]\nop = "mmap"\nlength = 0\nas = "m"\n'
        '[[check]]\nkind = "memory"\naddr = "m"\ndata = "x"\n'
    )
    assert str(err) == "s.toml: check[0].addr: mapping 'm' has no address: its mmap failed"
