"""fs/binfmt_elf.c elf_core_dump() (kernel/coredump.py): the ELF layout as
read back by pyelftools and by binutils' readelf, the segment bytes against
the process's memory, maydump()'s choices, holes for untouched anonymous
memory, and the 1 TiB mapping that FOLL_ANON exists for: dumped without a
page table allocated and with disk blocks only for the pages written."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from pagewalk import Kernel
from pagewalk.kernel import coredump
from pagewalk.kernel.coredump import elf_core_dump, maydump
from pagewalk.kernel.page import page_count, page_mapcount

elffile = pytest.importorskip("elftools.elf.elffile")

PAGE = 4096
GiB = 1 << 30
TiB = 1 << 40
#: Where the 1 TiB test writes: a page deep inside the mapping, off its start.
X = 300 * GiB + 5 * PAGE + 7


# --- helpers -------------------------------------------------------------------
def dump(k: Kernel, p, path: Path) -> int:
    with open(path, "wb") as fh:
        ret = elf_core_dump(p, fh)
    k.check_invariants()
    return ret


def parse(path: Path) -> tuple[dict, list[dict], list[dict]]:
    """(ELF header, program headers, notes) as pyelftools reads them."""
    with open(path, "rb") as fh:
        elf = elffile.ELFFile(fh)
        header = dict(elf.header)
        phdrs, notes = [], []
        for seg in elf.iter_segments():
            phdrs.append(dict(seg.header))
            if seg.header.p_type == "PT_NOTE":
                notes += [dict(n) for n in seg.iter_notes()]
    return header, phdrs, notes


def loads(path: Path) -> list[dict]:
    return [ph for ph in parse(path)[1] if ph["p_type"] == "PT_LOAD"]


def segment_bytes(path: Path, ph: dict, length: int | None = None) -> bytes:
    """The segment's bytes in the core (its first ``length`` bytes)."""
    with open(path, "rb") as fh:
        fh.seek(ph["p_offset"])
        return fh.read(ph["p_filesz"] if length is None else min(length, ph["p_filesz"]))


def pf(prot: str) -> int:
    return (4 if "r" in prot else 0) | (2 if "w" in prot else 0) | (1 if "x" in prot else 0)


needs_readelf = pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf")

_READELF_LOAD = re.compile(
    r"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+"
    r"0x([0-9a-f]+)\s+([RWE ]+?)\s+0x([0-9a-f]+)\s*$"
)


def readelf(*args: str) -> str:
    return subprocess.run(
        ["readelf", "-W", *args], check=True, capture_output=True, text=True
    ).stdout


def readelf_loads(path: Path) -> list[tuple[int, int, int, int, str, int]]:
    """(offset, vaddr, filesz, memsz, flags, align) of each LOAD, per readelf -l."""
    out = []
    for line in readelf("-l", str(path)).splitlines():
        m = _READELF_LOAD.match(line)
        if m:
            off, vaddr, filesz, memsz, flg, align = m.groups()
            out.append(
                (
                    int(off, 16),
                    int(vaddr, 16),
                    int(filesz, 16),
                    int(memsz, 16),
                    flg.replace(" ", ""),
                    int(align, 16),
                )
            )
    return out


# --- a process with one vma of each kind -----------------------------------------
@pytest.fixture
def zoo(k: Kernel, p):
    """Anonymous written, anonymous untouched, private file never written (but
    read), private file COWed, shared file read-only, shared anonymous with
    data, and an executable private file mapping."""
    content = bytes(range(256)) * 48  # 3 pages
    k.add_file("/lib/text", content)
    k.add_file("/data/f", b"F" * (2 * PAGE) + b"tail")
    k.add_file("/data/ro", b"R" * PAGE, mode="r")
    v = {}
    v["anon"] = k.mmap(p, 4 * PAGE, "rw")
    assert k.write(p, v["anon"] + 100, b"anonymous data").signal is None
    v["untouched"] = k.mmap(p, 64 * PAGE, "r")
    v["text"] = k.mmap(p, 3 * PAGE, "rx", file="/lib/text")
    assert k.read(p, v["text"], 16).data == content[:16]
    v["cow"] = k.mmap(p, 3 * PAGE, "rw", file="/data/f")
    assert k.write(p, v["cow"] + PAGE + 3, b"COW").signal is None
    v["shared"] = k.mmap(p, 2 * PAGE, "r", ("shared",), file="/data/f")
    assert k.read(p, v["shared"], 4).data == b"FFFF"
    v["shared_ro_file"] = k.mmap(p, PAGE, "r", ("shared",), file="/data/ro")
    v["shm"] = k.mmap(p, 3 * PAGE, "rw", ("shared",))
    assert k.write(p, v["shm"] + PAGE + 9, b"shared anonymous").signal is None
    prot = {
        "anon": "rw",
        "untouched": "r",
        "text": "rx",
        "cow": "rw",
        "shared": "r",
        "shared_ro_file": "r",
        "shm": "rw",
    }
    return v, prot


def test_core_is_an_et_core_for_x86_64(k, p, zoo, tmp_path) -> None:
    core = tmp_path / "core"
    size = dump(k, p, core)
    assert size == core.stat().st_size
    header, phdrs, _ = parse(core)
    assert header["e_type"] == "ET_CORE"
    assert header["e_machine"] == "EM_X86_64"
    assert header["e_ident"]["EI_CLASS"] == "ELFCLASS64"
    assert header["e_ident"]["EI_DATA"] == "ELFDATA2LSB"
    assert header["e_ident"]["EI_OSABI"] == "ELFOSABI_SYSV"  # ELFOSABI_NONE
    assert header["e_phoff"] == 64 and header["e_phentsize"] == 56
    assert header["e_phnum"] == len(p.mm.vmas()) + 1 == len(phdrs)
    assert header["e_shnum"] == 0


def test_notes_come_first_with_prstatus_and_prpsinfo(k, p, zoo, tmp_path) -> None:
    core = tmp_path / "core"
    dump(k, p, core)
    _, phdrs, notes = parse(core)
    assert phdrs[0]["p_type"] == "PT_NOTE"
    assert phdrs[0]["p_offset"] == 64 + 56 * len(phdrs)
    assert [(n["n_name"], n["n_type"]) for n in notes] == [
        ("CORE", "NT_PRSTATUS"),
        ("CORE", "NT_PRPSINFO"),
    ]
    prstatus = notes[0]["n_desc"]
    assert len(prstatus) == 336
    (si_signo,) = struct.unpack_from("<i", prstatus, 0)  # pr_info.si_signo
    (cursig,) = struct.unpack_from("<h", prstatus, 12)  # pr_cursig
    assert si_signo == cursig == 11  # SIGSEGV
    assert struct.unpack_from("<i", prstatus, 32)[0] == p.pid  # pr_pid
    assert prstatus[112:328] == bytes(216)  # pr_reg
    psinfo = notes[1]["n_desc"]
    assert notes[1]["n_descsz"] == 136
    assert psinfo["pr_pid"] == p.pid
    assert psinfo["pr_fname"].rstrip(b"\0") == b"p"
    assert psinfo["pr_sname"] == b"R"
    # The data starts at the first page boundary after the notes.
    first_load = phdrs[1]["p_offset"]
    assert first_load == (phdrs[0]["p_offset"] + phdrs[0]["p_filesz"] + PAGE - 1) // PAGE * PAGE


def test_pr_fname_is_comm_cut_to_15_characters_and_a_nul(k, tmp_path) -> None:
    q = k.spawn("a-rather-long-command-name")
    k.write(q, k.mmap(q, PAGE, "rw"), b"x")
    core = tmp_path / "core"
    dump(k, q, core)
    assert parse(core)[2][1]["n_desc"]["pr_fname"] == b"a-rather-long-c\x00"


def test_one_pt_load_per_vma_in_address_order(k, p, zoo, tmp_path) -> None:
    v, prot = zoo
    core = tmp_path / "core"
    dump(k, p, core)
    got = loads(core)
    vmas = p.mm.vmas()
    assert [ph["p_vaddr"] for ph in got] == [vma.vm_start for vma in vmas]
    assert [ph["p_memsz"] for ph in got] == [vma.vm_end - vma.vm_start for vma in vmas]
    by_addr = {ph["p_vaddr"]: ph for ph in got}
    for name, addr in v.items():
        assert by_addr[addr]["p_flags"] == pf(prot[name]), name
        assert by_addr[addr]["p_align"] == PAGE
    # Segments follow each other in the file; p_filesz is all or nothing.
    offset = got[0]["p_offset"]
    for ph, vma in zip(got, vmas, strict=True):
        assert ph["p_offset"] == offset
        assert ph["p_filesz"] == (ph["p_memsz"] if maydump(vma) else 0)
        offset += ph["p_filesz"]


def test_maydump_skips_unwritten_private_and_shared_file_mappings(k, p, zoo, tmp_path) -> None:
    v, _ = zoo
    core = tmp_path / "core"
    dump(k, p, core)
    filesz = {ph["p_vaddr"]: ph["p_filesz"] for ph in loads(core)}
    assert filesz[v["text"]] == 0  # private file mapping, read but never written
    assert filesz[v["shared"]] == 0  # VM_SHARED on a file with i_nlink 1
    assert filesz[v["shared_ro_file"]] == 0  # read-only fd: no VM_SHARED, no anon_vma
    assert filesz[v["untouched"]] == 0  # anonymous, no anon_vma
    assert filesz[v["anon"]] == 4 * PAGE
    assert filesz[v["cow"]] == 3 * PAGE  # COW gave it an anon_vma
    assert filesz[v["shm"]] == 3 * PAGE  # shmem object is unlinked


def test_segment_bytes_equal_process_memory(k, p, zoo, tmp_path) -> None:
    v, _ = zoo
    core = tmp_path / "core"
    dump(k, p, core)
    for ph in loads(core):
        if not ph["p_filesz"]:
            continue
        data = segment_bytes(core, ph)
        assert data == k.peek(p, ph["p_vaddr"], ph["p_memsz"]), hex(ph["p_vaddr"])
    by_addr = {ph["p_vaddr"]: ph for ph in loads(core)}
    anon = segment_bytes(core, by_addr[v["anon"]])
    assert anon[100:114] == b"anonymous data" and anon[:100] == bytes(100)
    cow = segment_bytes(core, by_addr[v["cow"]])
    # Page 0 is the file's page, page 1 the private copy, page 2 the file's
    # tail (zeroes past EOF); the file itself was not changed.
    assert cow[:PAGE] == b"F" * PAGE
    assert cow[PAGE : 2 * PAGE] == b"FFF" + b"COW" + b"F" * (PAGE - 6)
    assert cow[2 * PAGE :] == b"tail" + bytes(PAGE - 4)
    assert k.files["/data/f"].content() == b"F" * (2 * PAGE) + b"tail"
    shm = segment_bytes(core, by_addr[v["shm"]])
    assert shm[PAGE + 9 : PAGE + 25] == b"shared anonymous"
    assert shm.count(0) == len(shm) - len(b"shared anonymous")


@needs_readelf
def test_readelf_reads_the_same_core(k, p, zoo, tmp_path) -> None:
    v, prot = zoo
    core = tmp_path / "core"
    dump(k, p, core)
    assert re.search(r"Type:\s+CORE", readelf("-h", str(core)))
    assert re.search(r"Machine:\s+Advanced Micro Devices X86-64", readelf("-h", str(core)))
    notes = readelf("-n", str(core))
    assert "NT_PRSTATUS" in notes and "NT_PRPSINFO" in notes
    got = readelf_loads(core)
    vmas = p.mm.vmas()
    assert [g[1] for g in got] == [vma.vm_start for vma in vmas]
    assert [g[3] for g in got] == [vma.vm_end - vma.vm_start for vma in vmas]
    assert [g[2] for g in got] == [
        g[3] if maydump(vma) else 0 for g, vma in zip(got, vmas, strict=True)
    ]
    letters = {
        name: "".join(c for c in "RWE" if c.lower() in prot[name].replace("x", "e"))
        for name in prot
    }
    by_addr = {g[1]: g for g in got}
    for name, addr in v.items():
        assert by_addr[addr][4] == letters[name], name
        assert by_addr[addr][5] == PAGE
    assert [g[0] for g in got] == [ph["p_offset"] for ph in loads(core)]


def test_untouched_anonymous_pages_are_holes(k, p, tmp_path) -> None:
    addr = k.mmap(p, 64 << 20, "rw")  # 64 MiB, 32 pmd slots
    k.write(p, addr + (40 << 20) + 5, b"x")
    core = tmp_path / "core"
    size = dump(k, p, core)
    (ph,) = loads(core)
    assert ph["p_filesz"] == 64 << 20
    assert size == ph["p_offset"] + ph["p_filesz"] == core.stat().st_size
    assert core.stat().st_blocks * 512 <= 4 * PAGE  # header page + one data page
    data = segment_bytes(core, ph)
    assert data[(40 << 20) + 5] == ord("x") and data.count(0) == len(data) - 1


def test_trailing_hole_still_counts_in_the_file_size(k, p, tmp_path) -> None:
    addr = k.mmap(p, 16 * PAGE, "rw")
    k.write(p, addr, b"first page only")
    core = tmp_path / "core"
    size = dump(k, p, core)
    (ph,) = loads(core)
    assert size == core.stat().st_size == ph["p_offset"] + 16 * PAGE


# --- the 1 TiB mapping --------------------------------------------------------------
@pytest.mark.parametrize("profile", ["2.6.15", "2.6.14"])
def test_terabyte_mapping_dumps_fast_without_page_tables(profile, tmp_path) -> None:
    k = Kernel(profile)
    p = k.spawn("big")
    addr = k.mmap(p, TiB, "r")
    assert k.mem_write(p, addr + X, b"hi") == 2  # forced write: COW, anon_vma
    tables, allocated = k.page_tables(p), k.tables_allocated
    zero = k.zero_page
    zero_refs = page_count(zero) - page_mapcount(zero)
    core = tmp_path / "core"
    start = time.perf_counter()
    size = dump(k, p, core)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, elapsed
    assert k.page_tables(p) == tables and k.tables_allocated == allocated
    # Every reference the dump took on ZERO_PAGE was dropped again.  (Its
    # count rose by the ptes that the dump's read faults mapped it into: the
    # none ptes of the one pte table that existed, as in the kernel.)
    assert page_count(zero) - page_mapcount(zero) == zero_refs
    (ph,) = loads(core)
    assert ph["p_filesz"] == ph["p_memsz"] == TiB
    st = os.stat(core)
    assert size == st.st_size == ph["p_offset"] + TiB
    assert st.st_blocks * 512 <= 4 * PAGE  # header page + the written page
    with open(core, "rb") as fh:
        fh.seek(ph["p_offset"] + X)
        assert fh.read(2) == b"hi"
        fh.seek(ph["p_offset"] + (X & ~(PAGE - 1)))
        assert fh.read(PAGE) == k.peek(p, addr + (X & ~(PAGE - 1)), PAGE)


def test_zero_page_count_is_unchanged_when_no_pte_is_faulted(k, p, tmp_path) -> None:
    """Fill the only pte table completely: everything else is skipped by
    FOLL_ANON's no_page_table and the zero page's count does not move."""
    base = 0x100000000000  # 1 GiB aligned
    addr = k.mmap(p, GiB, "r", ("private", "fixed"), addr=base)
    assert addr == base
    for i in range(512):
        assert k.mem_write(p, base + i * PAGE, bytes([i % 251 + 1])) == 1
    before = page_count(k.zero_page)
    core = tmp_path / "core"
    dump(k, p, core)
    assert page_count(k.zero_page) == before
    (ph,) = loads(core)
    data = segment_bytes(core, ph, 512 * PAGE)
    assert all(data[i * PAGE] == i % 251 + 1 for i in range(512))
    assert core.stat().st_blocks * 512 <= 520 * PAGE


# --- the skip is the per-page loop, faster ---------------------------------------------
def _state(k: Kernel, p) -> tuple:
    mm = p.mm
    return (
        k.page_tables(p),
        k.tables_allocated,
        page_count(k.zero_page),
        page_mapcount(k.zero_page),
        mm._file_rss,
        mm._anon_rss,
        p.min_flt,
        p.maj_flt,
    )


def _small(profile: str, flags: tuple[str, ...] = ("private",)) -> tuple[Kernel, object]:
    k = Kernel(profile)
    p = k.spawn("s")
    a = k.mmap(p, 9 << 20, "r", flags)  # 2304 pages over 5 pmd slots
    k.mem_write(p, a + (3 << 20) + 11, b"forced")
    b = k.mmap(p, 5 << 20, "rw")
    k.write(p, b + PAGE, b"written")
    return k, p


@pytest.mark.parametrize("profile", ["2.6.15", "2.6.14"])
def test_skipping_untouched_spans_gives_the_per_page_result(profile, tmp_path, monkeypatch) -> None:
    """Dump the same process twice: with the span skip, and with the kernel's
    page-by-page get_user_pages loop everywhere (the skip disabled).  Same
    file, same tables, same counts, same fault counters."""
    k1, p1 = _small(profile)
    fast = tmp_path / "fast"
    dump(k1, p1, fast)
    k2, p2 = _small(profile)
    monkeypatch.setattr(coredump, "_foll_anon_hole_end", lambda mm, addr, end: addr)
    slow = tmp_path / "slow"
    dump(k2, p2, slow)
    assert fast.read_bytes() == slow.read_bytes()
    assert _state(k1, p1) == _state(k2, p2)


@pytest.mark.parametrize("profile", ["2.6.15", "2.6.14"])
def test_vm_locked_anonymous_memory(profile, tmp_path) -> None:
    """mlocked read-only anonymous memory: since deceb6cd it was made present
    with the zero page in real ptes and get_user_pages has no FOLL_ANON for
    it; before, mlock left it unmapped and untouched_anonymous_page (which
    ignores VM_LOCKED) answers ZERO_PAGE.  Either way: holes, and the dump
    allocates no table."""
    k, p = _small(profile, ("private", "locked"))
    tables = k.tables_allocated
    core = tmp_path / "core"
    dump(k, p, core)
    assert k.tables_allocated == tables
    locked, rw = loads(core)
    assert segment_bytes(core, locked)[(3 << 20) + 11 : (3 << 20) + 17] == b"forced"
    assert segment_bytes(core, rw)[PAGE : PAGE + 7] == b"written"
    assert core.stat().st_blocks * 512 <= 6 * PAGE


# --- errors --------------------------------------------------------------------------
class FailingFile:
    """A file that accepts ``room`` bytes and then fails with ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.pos = 0

    def seek(self, off: int) -> int:
        self.pos = off
        return off

    def write(self, data) -> int:
        if self.pos + len(data) > self.room:
            raise OSError(28, "No space left on device")
        self.pos += len(data)
        return len(data)

    def truncate(self, size: int) -> int:
        return size


def test_write_failure_returns_errno_and_leaks_nothing(k, p) -> None:
    addr = k.mmap(p, 8 * PAGE, "rw")
    for i in range(8):
        k.write(p, addr + i * PAGE, b"page %d" % i)
    pages = [k.page(p, addr + i * PAGE) for i in range(8)]
    counts = [page_count(pg) for pg in pages]
    assert elf_core_dump(p, FailingFile(3 * PAGE)) == -28
    assert [page_count(pg) for pg in pages] == counts
    k.check_invariants()  # mmap_sem released, no reference held


def test_task_without_mm(k, p, tmp_path) -> None:
    k.exit(p)
    with open(tmp_path / "core", "wb") as fh:
        assert elf_core_dump(p, fh) == -22
