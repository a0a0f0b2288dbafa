"""Run one scenario under ``dpor`` and under ``dfs`` and say how they differ.

DPOR with sleep sets is sound when it reaches every final state an
exhaustive search reaches; a state only ``dfs`` finds means some access was
made without a schedule point or with a footprint too small, so the race
analysis thought two steps commuted when they did not.  Shared by
``test_dpor_differential.py`` (random scenarios) and
``test_dpor_soundness.py`` (one regression scenario per root cause).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pagewalk.errors import InputError
from pagewalk.explore.api import ExploreResult, explore
from pagewalk.explore.observe import describe_observation
from pagewalk.scenario.loader import parse_scenario
from pagewalk.scenario.model import Scenario

#: dfs stops here; a scenario whose dfs does not finish is not compared
MAX_DFS_EXECUTIONS = 1000


@dataclass
class Outcome:
    """What one strategy made of a scenario: its verdict and final states
    (each with a schedule that reaches it), or the error that stopped it."""

    verdict: str  # ok | violation | incomplete | input error | crash
    states: dict[tuple, str] = field(default_factory=dict)
    detail: str = ""  # the error or the first violation's message
    executions: int = 0


def run_strategy(scenario: Scenario, strategy: str, max_executions: int | None = None) -> Outcome:
    try:
        res: ExploreResult = explore(
            scenario,
            strategy=strategy,
            collect=True,
            stop_first=False,
            shorten=False,
            max_executions=max_executions,
        )
    except InputError as err:
        return Outcome("input error", detail=str(err))
    except Exception as err:  # a crash of the explorer itself: reported, not raised
        return Outcome("crash", detail=f"{type(err).__name__}: {err}")
    detail = res.violations[0].message if res.violations else ""
    return Outcome(res.status, dict(res.observations), detail, res.executions)


@dataclass
class Comparison:
    dpor: Outcome
    dfs: Outcome

    @property
    def complete(self) -> bool:
        return self.dfs.verdict != "incomplete"

    @property
    def differs(self) -> bool:
        if not self.complete:
            return False
        return self.dpor.verdict != self.dfs.verdict or set(self.dpor.states) != set(
            self.dfs.states
        )

    def report(self, toml_text: str, file: str) -> str:
        """The scenario and every state one strategy reached and the other
        did not, each with a schedule replaying it."""
        lines = [
            f"dpor: {self.dpor.verdict} after {self.dpor.executions} executions, "
            f"{len(self.dpor.states)} state(s) {self.dpor.detail}".rstrip(),
            f"dfs:  {self.dfs.verdict} after {self.dfs.executions} executions, "
            f"{len(self.dfs.states)} state(s) {self.dfs.detail}".rstrip(),
        ]
        for only, other, name in (
            (self.dfs, self.dpor, "dfs"),
            (self.dpor, self.dfs, "dpor"),
        ):
            for state, schedule in sorted(only.states.items(), key=lambda kv: kv[1]):
                if state in other.states:
                    continue
                lines.append(f"state reached by {name} only, schedule {schedule}:")
                lines.append(f"  pagewalk replay {file} '{schedule}'")
                lines += ["    " + line for line in _describe(state)]
        lines += [f"--- {file}", toml_text]
        return "\n".join(lines)


def _describe(state: tuple) -> list[str]:
    if not state:  # an execution that ended in a kernel BUG, a deadlock, a crash
        return ["(no final state: the execution failed; replay it for the trace)"]
    return describe_observation(state)


def compare(
    toml_text: str, file: str = "scenario.toml", max_dfs: int = MAX_DFS_EXECUTIONS
) -> Comparison:
    """dpor and dfs on one scenario (dfs bounded by ``max_dfs`` executions)."""
    scenario = parse_scenario(toml_text, file)
    dfs = run_strategy(scenario, "dfs", max_dfs)
    if dfs.verdict == "incomplete":
        return Comparison(Outcome("not run"), dfs)
    return Comparison(run_strategy(scenario, "dpor"), dfs)
