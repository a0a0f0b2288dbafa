"""Run both sides and build the report (a JSON-able dict) and its text form."""

from __future__ import annotations

import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import sys
from collections.abc import Callable
from typing import Any

from . import host as _host
from . import model as _model
from .host import METHOD, OPERATIONS, HostUnavailable

PAGE = 4096
#: Pages for the tracemalloc figure: per-page bookkeeping does not depend on
#: the size once page tables are amortised, and tracemalloc slows the model ~3x.
MEMORY_PAGES_MAX = 65536

ProgressFn = Callable[[str], None]


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    thp = None
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        pass
    return {
        "system": platform.system(),
        "kernel_release": platform.release(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "thp_enabled": thp,
    }


def _median_detail(details: list[dict[str, float]]) -> dict[str, float]:
    keys = details[0].keys() if details else ()
    return {key: round(statistics.median(d[key] for d in details), 1) for key in keys}


def _host_side(
    n: int,
    names: list[str],
    repeat: int,
    progress: ProgressFn,
) -> tuple[dict[str, Any], str | None]:
    """name -> {"runs", "detail"} or {"error"}; plus a note if the host is out."""
    try:
        hostm = _host.Host(n)
        progress("kernel: warm-up")
        hostm.warm_up()
    except HostUnavailable as err:
        return {}, str(err)
    out: dict[str, Any] = {}
    for name in names:
        runs = []
        try:
            for rep in range(repeat):
                progress(f"kernel: {name} ({rep + 1}/{repeat})")
                runs.append(getattr(hostm, name)())
        except HostUnavailable as err:
            out[name] = {"error": str(err)}
            continue
        out[name] = {
            "runs": [r.ns_per_page for r in runs],
            "detail": _median_detail([r.detail for r in runs]),
        }
    return out, None


def run_bench(
    n: int,
    repeat: int,
    names: list[str] | None = None,
    progress: ProgressFn | None = None,
    memory: bool = True,
    sparse: bool = True,
    profile_top: int | None = None,
) -> dict[str, Any]:
    """Measure the host kernel, then the model; the report as a dict.  With
    ``profile_top``, cProfile runs over the model's timed regions only and
    ``report["profile"]`` holds its top functions by cumulative time."""
    names = list(names or OPERATIONS)
    say = progress or (lambda _text: None)
    kernel, kernel_note = _host_side(n, names, repeat, say)
    gc.collect()
    profiler = cProfile.Profile() if profile_top else None
    _model.profile_timed_regions(profiler)
    try:
        model_runs = _model.run_model(
            n, names, repeat, lambda name, rep: say(f"model: {name} ({rep + 1}/{repeat})")
        )
    finally:
        _model.profile_timed_regions(None)

    results = []
    for name in names:
        mruns = [ns for ns, _ in model_runs[name]]
        model_ns = statistics.median(mruns)
        k = kernel.get(name, {})
        kruns = k.get("runs")
        kernel_ns = statistics.median(kruns) if kruns else None
        ratio = model_ns / kernel_ns if kernel_ns and kernel_ns > 0 else None
        row: dict[str, Any] = {
            "name": name,
            "pages": n,
            "kernel_ns_per_page": None if kernel_ns is None else round(kernel_ns, 1),
            "model_ns_per_page": round(model_ns, 1),
            "ratio": None if ratio is None else round(ratio, 2),
            "kernel_runs": None if not kruns else [round(x, 1) for x in kruns],
            "model_runs": [round(x, 1) for x in mruns],
            "kernel_method": METHOD[name],
            "model_entry": _model.ENTRY[name],
        }
        if k.get("detail"):
            row["kernel_detail"] = k["detail"]
        model_detail = _median_detail([d for _, d in model_runs[name]])
        if model_detail:
            row["model_detail"] = model_detail
        if "error" in k:
            row["kernel_error"] = k["error"]
        results.append(row)

    report: dict[str, Any] = {"results": results}
    if profiler is not None:
        report["profile"] = format_profile(profiler, profile_top)
    if memory:
        say("model: memory per page (tracemalloc)")
        report["memory"] = _model.measure_memory(min(n, MEMORY_PAGES_MAX))
        gc.collect()
    if sparse:
        say("model: sparse core dump (1 TiB)")
        report["sparse_core"] = _model.measure_sparse_core()
    report["machine"] = machine_info()
    report["kernel_measured"] = kernel_note is None
    report["kernel_note"] = (
        None
        if kernel_note is None
        else f"host kernel not measured: {kernel_note}; model figures only"
    )
    report["config"] = {
        "pages": n,
        "bytes": n * PAGE,
        "repeat": repeat,
        "statistic": "median of the repetitions, ns per 4 KiB page",
    }
    return report


# --- text ------------------------------------------------------------------------------------
def format_profile(profiler: cProfile.Profile, top: int) -> str:
    """The ``top`` functions of the timed regions by cumulative time."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:g} {unit}" if unit == "B" else f"{nbytes:.4g} {unit}"
        nbytes /= 1024
    return ""  # unreachable


def _num(x: float | None, fmt: str = ",.1f") -> str:
    return "n/a" if x is None else format(x, fmt)


def format_text(report: dict[str, Any]) -> str:
    out = io.StringIO()
    w = out.write
    cfg = report["config"]
    w(
        f"pagewalk bench: host kernel vs model, ns per 4 KiB page, "
        f"{cfg['pages']} pages ({_size(cfg['bytes'])}), median of {cfg['repeat']} runs\n"
    )
    if report["kernel_note"]:
        w(f"NOTE: {report['kernel_note']}\n")
    w("\n")
    header = (
        f"{'operation':<12} {'pages':>8} {'kernel ns/page':>15} {'model ns/page':>14} "
        f"{'model/kernel':>13}"
    )
    w(header + "\n" + "-" * len(header) + "\n")
    for r in report["results"]:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:,.1f}x"
        w(
            f"{r['name']:<12} {r['pages']:>8} {_num(r['kernel_ns_per_page']):>15} "
            f"{_num(r['model_ns_per_page']):>14} {ratio:>13}\n"
        )

    w("\nruns (ns/page):\n")
    for r in report["results"]:
        kruns = (
            "n/a" if r["kernel_runs"] is None else " ".join(f"{x:.0f}" for x in r["kernel_runs"])
        )
        mruns = " ".join(f"{x:.0f}" for x in r["model_runs"])
        w(f"  {r['name']:<12} kernel {kruns:<40} model {mruns}\n")

    w("\nkernel side (host kernel, ctypes, MADV_NOHUGEPAGE, fresh mapping per run):\n")
    for r in report["results"]:
        line = r.get("kernel_error") or r["kernel_method"]
        detail = r.get("kernel_detail")
        if detail:
            line += "; medians: " + ", ".join(f"{k} {v:g}" for k, v in detail.items())
        w(f"  {r['name']:<12} {line}\n")
    w("model side (entry timed, fresh Kernel per run, setup untimed):\n")
    for r in report["results"]:
        w(f"  {r['name']:<12} {r['model_entry']}\n")

    mem = report.get("memory")
    if mem:
        ratio = mem["model_bytes_per_page"] / mem["kernel_bytes_per_page"]
        w(
            f"\nmemory per resident anonymous page, contents excluded ({mem['pages']} pages, "
            f"tracemalloc): model {mem['model_bytes_per_page']:.1f} B, kernel "
            f"{mem['kernel_bytes_per_page']} B ({mem['kernel_breakdown']}): {ratio:.1f}x\n"
        )
    sp = report.get("sparse_core")
    if sp:
        ref = sp["kernel_reference"]
        w(
            f"sparse core dump, {_size(sp['mapping_bytes'])} read-only anon mapping with 1 "
            f"force-written page: model {sp['model_seconds']:.3f} s, page tables "
            f"{sp['page_tables_before']} before / {sp['page_tables_after']} after, core "
            f"{_size(sp['core_apparent_bytes'])} apparent, {_size(sp['core_disk_bytes'])} on disk; "
            f"kernel {ref['seconds']} s, {_size(ref['disk_bytes'])} on disk "
            f"(reference, not measured here)\n"
        )
    m = report["machine"]
    w(
        f"\nmachine: {m['system']} {m['kernel_release']}, {m['cpu_model']}, {m['cores']} cores, "
        f"{m['python_implementation']} {m['python']}"
        + (f", THP {m['thp_enabled']}" if m.get("thp_enabled") else "")
        + "\n"
    )
    return out.getvalue()


def progress_line(enabled: bool | None = None) -> tuple[ProgressFn, Callable[[], None]]:
    """A one-line status on stderr (only when it is a terminal) and its eraser."""
    on = sys.stderr.isatty() if enabled is None else enabled
    width = [0]

    def show(text: str) -> None:
        if on:
            line = f"  bench: {text}"
            sys.stderr.write("\r" + line.ljust(width[0]))
            sys.stderr.flush()
            width[0] = max(width[0], len(line))

    def done() -> None:
        if on and width[0]:
            sys.stderr.write("\r" + " " * width[0] + "\r")
            sys.stderr.flush()

    return show, done
