"""``explore --compare A B``: which final states can each profile reach?

Both profiles are explored completely (all interleavings, up to the
reduction), collecting each distinct observable final state (see
``observe.py``) with one schedule that reaches it.  States reachable under
one profile only are what the change between them did to this scenario."""

from __future__ import annotations

import argparse
import json

from ..scenario.model import Scenario
from .api import explore
from .observe import describe_observation

EXIT_SAME, EXIT_DIFFERENT, EXIT_INCOMPLETE = 0, 1, 3


def compare_profiles(
    scenario: Scenario,
    a: str,
    b: str,
    strategy: str = "dpor",
    max_executions: int | None = None,
    timeout: float | None = None,
    preemption_bound: int | None = None,
) -> dict:
    results = {}
    for sem in (a, b):
        results[sem] = explore(
            scenario,
            sem,
            strategy,
            max_executions,
            timeout,
            preemption_bound,
            stop_first=False,
            collect=True,
            shorten=False,
        )
    sa, sb = (set(results[s].observations) for s in (a, b))
    return {
        "results": results,
        "only": {
            a: [(o, results[a].observations[o]) for o in results[a].observations if o not in sb],
            b: [(o, results[b].observations[o]) for o in results[b].observations if o not in sa],
        },
        "common": len(sa & sb),
    }


def compare_command(args: argparse.Namespace, scenario: Scenario) -> int:
    a, b = args.compare
    cmp = compare_profiles(
        scenario, a, b, args.strategy, args.max_executions, args.timeout, args.preemption_bound
    )
    incomplete = [s for s, r in cmp["results"].items() if r.status == "incomplete"]
    if args.json:
        print(
            json.dumps(
                {
                    "scenario": scenario.name,
                    "compare": [a, b],
                    "status": "incomplete"
                    if incomplete
                    else ("different" if cmp["only"][a] or cmp["only"][b] else "same"),
                    "profiles": {
                        s: {
                            "executions": r.executions,
                            "elapsed_s": round(r.elapsed_s, 4),
                            "states": len(r.observations),
                            "status": r.status,
                        }
                        for s, r in cmp["results"].items()
                    },
                    "common_states": cmp["common"],
                    "only": {
                        s: [
                            {"schedule": sched, "state": describe_observation(obs)}
                            for obs, sched in only
                        ]
                        for s, only in cmp["only"].items()
                    },
                },
                indent=2,
            )
        )
    else:
        print(f"compare {scenario.name!r} ({args.file}): profile {a} vs {b}")
        for s, r in cmp["results"].items():
            print(
                f"  {s}: {len(r.observations)} final state(s) from {r.executions} executions "
                f"in {r.elapsed_s:.2f} s ({r.status})"
            )
        print(f"  states reachable under both: {cmp['common']}")
        for s, only in cmp["only"].items():
            print(f"\nreachable under {s} only: {len(only)}")
            for obs, sched in only:
                print(
                    f"  schedule {sched}  (pagewalk replay {args.file} '{sched}' --semantics {s})"
                )
                for line in describe_observation(obs):
                    print(f"      {line}")
    if incomplete:
        return EXIT_INCOMPLETE
    return EXIT_DIFFERENT if cmp["only"][a] or cmp["only"][b] else EXIT_SAME
