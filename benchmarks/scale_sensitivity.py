"""How much the curves of ``pagewalk scale`` depend on the cost table.

    .venv/bin/python benchmarks/scale_sensitivity.py     # about a minute

pft, private layout, 256 pages per CPU; each row is a multiple of one CPU's
rate at 1, 4, 8, 16, 64 and 128 CPUs, for seed^-ptl-pushdown (the global
lock held over the fault) and 2.6.15 (split from 4 CPUs), under: the
default table, the transfer cost across its published range (200, 300 and
400 cycles at 1.5 GHz), and every
assumed constant doubled or halved (``fault`` absorbing the difference, so
one CPU's fault still costs the host's).
"""

from __future__ import annotations

import dataclasses

from pagewalk.scale.costs import CostModel, default_costs
from pagewalk.scale.workloads import simulate, split_default

NS = 1000
CPUS = (1, 4, 8, 16, 64, 128)
ASSUMED = ("atomic", "pcp_page", "buddy_page", "pagevec_page", "lru_page")
#: How many of each assumed cost one uncontended fault pays (see default_costs).
PER_FAULT = {"atomic": 4, "pcp_page": 1, "pagevec_page": 1}


def scaled(base: CostModel, factor: float) -> CostModel:
    new = {name: round(getattr(base, name) * factor) for name in ASSUMED}
    moved = sum(n * (new[name] - getattr(base, name)) for name, n in PER_FAULT.items())
    return dataclasses.replace(base, fault=base.fault - moved, **new)


def main() -> None:
    base = default_costs()
    variants = {
        "default": base,
        "transfer 200 ns (300 cycles)": dataclasses.replace(base, transfer=200 * NS),
        "transfer 267 ns (400 cycles)": dataclasses.replace(base, transfer=267 * NS),
        "assumed x2": scaled(base, 2.0),
        "assumed x0.5": scaled(base, 0.5),
    }
    print(f"{'':30s} {'global at ' + ','.join(map(str, CPUS)):>36} | 2.6.15")
    for name, costs in variants.items():
        cols = []
        for sem in ("seed^-ptl-pushdown", "2.6.15"):
            rates = [
                simulate("pft", "private", n, sem, split_default(sem, n), 256, costs) for n in CPUS
            ]
            one = rates[0].faults_per_wall_s
            cols.append(" ".join(f"{p.faults_per_wall_s / one:5.2f}" for p in rates))
        print(f"{name:30s} {cols[0]} | {cols[1]}", flush=True)


if __name__ == "__main__":
    main()
