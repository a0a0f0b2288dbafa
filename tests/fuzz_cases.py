"""Fuzzed scenario files, and how a run of ``pagewalk`` on one is judged:
shared by ``test_fuzz_bounded.py`` and ``benchmarks/fuzz_scenarios.py``.

A case is the bytes of a scenario file and where they came from:

* ``generated``: a random small scenario (scenario_gen.py) over the schema,
  sometimes broken structurally (scenario_mutations.break_once) or edited
  as text afterwards;
* ``example-fields``: an ``examples/`` file parsed, broken 1-3 times, written
  back;
* ``example-text``: an ``examples/`` file with character edits;
* ``example-bytes``: an ``examples/`` file with raw byte edits (invalid
  UTF-8, NULs).

Cases are drawn by Hypothesis (:func:`draw_cases`), so a seed gives the same
series.  :func:`judge` classifies what one run did.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from scenario_gen import small_scenario
from scenario_mutations import break_once, mutate_text, text_edits, to_toml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ORIGINS = ("generated", "example-fields", "example-text", "example-bytes")


@dataclass
class Case:
    index: int
    origin: str
    data: bytes


def example_texts() -> list[str]:
    return [p.read_text() for p in sorted(EXAMPLES.rglob("*.toml"))]


def _draw(data: st.DataObject, examples: list[str], rng: random.Random) -> tuple[str, bytes]:
    origin = rng.choices(ORIGINS, weights=(4, 2, 2, 2))[0]
    if origin == "generated":
        doc = small_scenario(rng, "fuzz", max_interleavings=None)
        # Half of them left valid, so that the model runs, not only the loader.
        for _ in range(rng.choice((0, 0, 0, 1, 2))):
            break_once(doc, data)
        text = to_toml(doc)
        if rng.random() < 0.2:
            text = mutate_text(text, data.draw(text_edits))
        return origin, text.encode("utf-8", "surrogatepass")
    text = rng.choice(examples)
    if origin == "example-fields":
        doc = tomllib.loads(text)
        for _ in range(data.draw(st.integers(1, 3))):
            break_once(doc, data)
        return origin, to_toml(doc).encode("utf-8", "surrogatepass")
    if origin == "example-text":
        return origin, mutate_text(text, data.draw(text_edits)).encode("utf-8", "surrogatepass")
    raw = text.encode("utf-8")
    for pos, chunk in data.draw(
        st.lists(st.tuples(st.integers(0, 100_000), st.binary(max_size=4)), min_size=1, max_size=6)
    ):
        at = pos % (len(raw) + 1)
        raw = raw[:at] + chunk + raw[at + 1 :]
    return origin, raw


def draw_cases(count: int, seed: int = 0) -> list[Case]:
    """``count`` cases, the same ones for the same seed."""
    examples = example_texts()
    cases: list[Case] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        # The shape of a case by rng (Hypothesis leans to small values, and
        # would pick the same few), the edits themselves by Hypothesis.
        key = data.draw(st.tuples(st.integers(0, 2**64), st.binary(min_size=8, max_size=8)))
        origin, raw = _draw(data, examples, random.Random(f"{key[0]}:{key[1].hex()}"))
        cases.append(Case(len(cases), origin, raw))

    collect()
    return cases


# --------------------------------------------------------------------------
# Judging one run

#: exit statuses a command may end with, apart from 2 (bad input)
FINE_EXITS = {"run": {0, 1}, "explore": {0, 1, 3}}


@dataclass
class Verdict:
    kind: str  # ok | rejected | traceback | bad-error | unexpected-exit | hang
    detail: str = ""


def judge(command: str, status: int | None, stderr: str, stdout: str = "") -> Verdict:
    """What a run of ``pagewalk COMMAND`` that ended with ``status`` (None:
    killed at the time limit) and printed ``stderr`` says about pagewalk."""
    if status is None:
        return Verdict("hang")
    if "Traceback (most recent call last)" in stderr + stdout:
        return Verdict("traceback", _last_line(stderr))
    if status == 2:
        lines = stderr.strip().splitlines()
        if len(lines) != 1:
            return Verdict("bad-error", f"{len(lines)} lines: {_first_line(stderr)}")
        return Verdict("rejected", lines[0])
    if status not in FINE_EXITS[command]:
        return Verdict("unexpected-exit", f"exit {status}: {_first_line(stderr)}")
    return Verdict("ok")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else ""


def command_for(case: Case, explore_every: int) -> str:
    """Every ``explore_every``-th case is explored, the others run."""
    return "explore" if explore_every and case.index % explore_every == 0 else "run"


def arguments(command: str, path: str, out_dir: str, max_executions: int) -> list[str]:
    if command == "explore":
        return ["explore", path, "--max-executions", str(max_executions), "--no-progress"]
    return ["run", path, "--output-dir", out_dir]
