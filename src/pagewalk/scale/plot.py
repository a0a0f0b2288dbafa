"""``--plot FILE``: faults per wall second against CPUs, one line per
profile and lock mode, log-scaled CPU axis (matplotlib, the optional extra
``pagewalk[plot]``)."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from ..kernel.semantics import get_semantics
from .workloads import Point

FORMATS = (".svg", ".png")


def check_plot(path: str) -> None:
    """Fail before simulating: a bad file name or no matplotlib."""
    if os.path.splitext(path)[1].lower() not in FORMATS:
        raise InputError(f"--plot {path}: the file must end in .svg or .png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(
            "--plot needs matplotlib, the optional extra: pip install 'pagewalk[plot]'"
        ) from None


def _series(points: list[Point], split_arg: str | None) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = {}
    for p in points:
        if split_arg is None and get_semantics(p.semantics).split_ptlock_available:
            mode = "split ptlock from 4 CPUs (CONFIG_SPLIT_PTLOCK_CPUS)"
        else:
            mode = "split ptlock" if p.split_ptlock else "global page_table_lock"
        out.setdefault(f"{p.semantics}, {mode}", []).append(p)
    return out


def write_plot(path: str, points: list[Point], args: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A fixed salt for the SVG's element ids and no date: the same run draws
    # the same bytes.
    matplotlib.rcParams["svg.hashsalt"] = "pagewalk"

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, pts in _series(points, args.split_ptlock).items():
        pts = sorted(pts, key=lambda p: p.cpus)
        ax.plot([p.cpus for p in pts], [p.faults_per_wall_s for p in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ticks = sorted({p.cpus for p in points})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("CPUs (one thread each)")
    ax.set_ylabel("faults per wall second (virtual time)")
    ax.set_title(f"pagewalk scale: {args.workload}, {args.layout} layout")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    metadata = {"Date": None} if path.lower().endswith(".svg") else {}
    try:
        fig.savefig(path, metadata=metadata)
    except OSError as err:
        raise InputError(f"--plot {path}: {err.strerror}") from None
    finally:
        plt.close(fig)
