"""Interrupt, checkpoint and resume of a search in one process
(``explore --checkpoint FILE``, ``--resume FILE``).

A :class:`Cursor` follows the search: at the top of every iteration it marks
the branch to run next (dfs, dpor) or the next execution's index (random)
and the tally's counts.  The tally counts an execution by its last statement
(``Tally.count``), so wherever the search ends -- complete, out of budget,
or interrupted anywhere -- the cursor can tell whether the execution under
way was counted.  If it was not, :meth:`Cursor.settle` undoes what it had
begun (the nodes it pushed, its branch marked done, a pruning or violation
recorded before the count) and that branch runs again on resume.  What the
uncounted execution's race analysis added to the backtrack sets above it is
kept: the same execution adds the same points when it runs again.  So a
resumed search runs the branches an uninterrupted one would, in the same
order, and ends with the same executions, violations, final states and
verdict.

The file is JSON (versioned; no pickle, so loading it runs no code), written
atomically -- a temporary file in the same directory, then ``os.replace`` --
when the search starts, every ``interval`` seconds between two executions,
and when it ends (interrupted too).  It names what it is a checkpoint of: the
scenario (path and the sha256 of its file), the profile, the strategy and
everything else that shapes the search; ``--resume`` refuses another.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..kernel.semantics import get_semantics
from ..scenario.model import Scenario
from .dpor import TreeSearch

if TYPE_CHECKING:
    from .api import Tally

FORMAT = "pagewalk-explore-checkpoint"
VERSION = 1
#: seconds between two checkpoints of a running search
INTERVAL = 5.0

#: what must be the same to resume, with how a refusal names it
_SAME = (
    ("semantics", "profile"),
    ("strategy", "strategy"),
    ("preemption_bound", "--preemption-bound"),
    ("seed", "--seed"),
    ("all", "--all"),
    ("max_steps", "--max-steps"),
    ("collect", "collection of final states"),
)


def identity(
    scenario: Scenario,
    sem: str,
    strategy: str,
    bound: int | None,
    seed: int,
    stop_first: bool,
    max_steps: int,
    collect: bool,
) -> dict[str, Any]:
    """What a checkpoint is a checkpoint of."""
    return {
        "scenario": {"name": scenario.name, "file": scenario.path, "sha256": _digest(scenario)},
        "semantics": get_semantics(sem).name,
        "strategy": strategy,
        "preemption_bound": bound,
        "seed": seed if strategy == "random" else None,  # dfs and dpor use none
        "all": not stop_first,
        "max_steps": max_steps,
        "collect": collect,
    }


def _digest(scenario: Scenario) -> str:
    """The sha256 of the scenario's file; of its parsed form when it has
    no readable file (a scenario built in code)."""
    try:
        data = Path(scenario.path).read_bytes()
    except (OSError, ValueError):
        data = repr(scenario).encode()
    return hashlib.sha256(data).hexdigest()


class Cursor:
    """Where a search is, what to undo if it stops mid-execution, and its
    checkpoint file (``path``; None: none is written).  ``kind``: ``tree``
    (dfs, dpor), ``tasks`` (dfs in several processes) or ``random``."""

    def __init__(
        self,
        tally: Tally,
        path: str | None = None,
        ident: dict[str, Any] | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.tally = tally
        self.path = path
        self.ident = ident or {}
        self.interval = interval
        self.next_write = 0.0  # the first mark writes at once: a bad path fails early
        self.saved: dict[str, Any] | None = None  # a checkpoint to resume from
        self.live = False  # the search has begun (its state is whole)
        self.kind = "tree"
        self.tree: TreeSearch | None = None
        self.prefix: list[int] | None = []  # the branch to run next; None: no more
        self.tasks: list[list[int]] = []  # dfs in several processes: the subtrees left
        self.length = 0  # random: PCT's execution length
        self.single = False  # random: one task, one execution
        self.spread = False  # outcomes come in batches, from several processes
        self.counts = (0, 0, 0)

    # -- beginning ------------------------------------------------------------------------
    def resume_from(self, saved: dict[str, Any]) -> None:
        """Take back a loaded checkpoint's tally; the search's own state is
        taken back when the search begins."""
        res = self.tally.res
        res.executions, res.pruned = int(saved["executions"]), int(saved["pruned"])
        from .api import Violation

        res.violations = [Violation(**v) for v in saved["violations"]]
        res.observations = {ast.literal_eval(k): s for k, s in saved["observations"]}
        self.tally.budget.start -= float(saved["elapsed_s"])  # elapsed counts on
        if saved["finished"]:
            res.status, res.reason = saved["status"], saved["reason"]
            self.prefix = None
        self.saved = saved

    def begin_tree(self, tree: TreeSearch) -> list[int] | None:
        """The first branch to run (None: nothing is left to run)."""
        self.tree = tree
        if self.saved is not None:
            state = self.saved["search"]
            tree.restore(state["tree"])
            self.prefix = state["next"]
        return self._begin("")

    def begin_tasks(self) -> list[list[int]] | None:
        """dfs in several processes: the subtrees to explore (None: nothing is
        left).  A checkpoint of a dfs in one process gives the subtrees its
        path had still to explore, the branch it was to run next among them."""
        self.kind, self.spread, self.tasks = "tasks", True, [[]]
        search = self.saved["search"] if self.saved is not None else {}
        if "tasks" in search:
            self.tasks = [list(t) for t in search["tasks"]]
        elif search.get("next") is not None:
            tree = TreeSearch(False, self.ident["preemption_bound"])
            tree.restore(search["tree"])
            self.tasks = tree.pending_prefixes(0)[::-1]  # taken from the end: first last
        return None if self._begin("") is None else list(self.tasks)  # the search's to take

    def begin_random(self, length: Any, single: bool = False, spread: bool = False) -> int | None:
        """The index of the first execution to run (None: nothing is left);
        ``length()`` computes PCT's execution length if no checkpoint has it."""
        self.kind, self.single, self.spread = "random", single, spread
        if self.saved is not None:
            self.length = int(self.saved["search"]["length"])
        else:
            self.length = length()
        return None if self._begin("random search: ") is None else self.tally.res.executions

    def _begin(self, why: str) -> list[int] | None:
        self.live = True
        self.mark()  # the first checkpoint: a path that cannot be written fails now
        if self.prefix is None or (self.saved is not None and self.tally.exhausted(why)):
            return None
        return self.prefix

    # -- during the search ------------------------------------------------------------------
    def mark(self, prefix: list[int] | None = None) -> None:
        """An execution is about to start (of ``prefix``, in a tree search),
        or in several processes a task's outcomes were all counted: the
        state now is whole, and is what an interrupt goes back to."""
        if prefix is not None:
            self.prefix = prefix
        res = self.tally.res
        self.counts = (res.executions, res.pruned, len(res.violations))
        if self.path is not None and time.monotonic() >= self.next_write:
            self.write()

    def mark_tasks(self, pending: list[list[int]]) -> None:
        """dfs in several processes: ``pending`` subtrees are left."""
        self.tasks = pending
        self.mark()

    # -- the end ------------------------------------------------------------------------
    def settle(self) -> None:
        """The search stopped: undo what it had begun and not counted, find
        what is left to run, report the tree's coverage, write the
        checkpoint."""
        if not self.live:  # stopped while taking a checkpoint back: keep the file as it is
            return
        res, tally = self.tally.res, self.tally
        if tally.stop_first and res.violations:
            self.prefix = None  # the search ends at a violation
        elif self.spread:
            self._settle_spread()
        else:
            self._settle_one()
        if self.path is not None:
            self.write()

    def _settle_one(self) -> None:
        """One execution at a time: it was counted, or is undone."""
        res, tree = self.tally.res, self.tree
        executions, pruned, violations = self.counts
        if res.executions == executions:  # the execution under way was not counted
            res.pruned = pruned
            del res.violations[violations:]
            if tree is not None and self.prefix is not None:
                del tree.stack[len(self.prefix) :]
                if self.prefix:
                    tree.stack[-1].done.discard(self.prefix[-1])
        elif tree is not None:
            self.prefix = tree.next_prefix()
        if self.single and res.executions:
            self.prefix = None
        if tree is not None and self.prefix is not None:
            res.coverage = tree.coverage()

    def _settle_spread(self) -> None:
        """Outcomes counted in batches, from several processes: back to the
        last mark, after which a task or chunk whose outcomes were not all
        counted runs again."""
        res = self.tally.res
        res.executions, res.pruned, violations = self.counts
        del res.violations[violations:]
        if self.kind == "tasks":
            if not self.tasks:
                self.prefix = None  # no subtree left: the dfs is complete
            else:
                res.coverage = {"subtrees": len(self.tasks)}

    # -- the file -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        res = self.tally.res
        if self.kind == "tasks":
            search: dict[str, Any] = {"tasks": self.tasks}
        elif self.kind == "random":
            search = {"length": self.length}
        else:
            assert self.tree is not None
            tree = self.tree.state()
            tree["footprints"] = [repr(fp) for fp in tree["footprints"]]
            search = {"next": self.prefix, "tree": tree}
        return {
            "format": FORMAT,
            "version": VERSION,
            **self.ident,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "finished": self.prefix is None,
            "status": res.status,
            "reason": res.reason,
            "executions": res.executions,
            "pruned": res.pruned,
            "elapsed_s": round(self.tally.elapsed(), 3),
            "violations": [
                {
                    "check": v.check,
                    "message": v.message,
                    "schedule": v.schedule,
                    "preemptions": v.preemptions,
                }
                for v in res.violations
            ],
            "observations": [[repr(k), s] for k, s in res.observations.items()],
            "search": search,
        }

    def write(self) -> None:
        """Replace the file at once: a reader (or a crash) sees the old
        checkpoint or the new one, never a part."""
        assert self.path is not None
        write_atomically(self.path, json.dumps(self.state(), separators=(",", ":")) + "\n")
        self.next_write = time.monotonic() + self.interval


def _footprints(tree: dict[str, Any]) -> list[tuple]:
    # literal_eval reads Python literals only (tuples, str, int): no code runs
    return [ast.literal_eval(fp) for fp in tree["footprints"]]


def write_atomically(path: str, text: str) -> None:
    folder = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}", "--checkpoint") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        os.unlink(tmp)
        raise InputError(f"cannot write {path}: {err.strerror}", "--checkpoint") from None
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: str, ident: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path``, if it is one of the search ``ident``
    describes; otherwise one line saying what differs (InputError)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(
            f"cannot read {path}: {getattr(err, 'strerror', None) or err}", "--resume"
        ) from None
    try:
        saved = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not a checkpoint: not JSON ({err.msg})", "--resume") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise InputError(f"{path} is not a pagewalk explore checkpoint", "--resume")
    if saved.get("version") != VERSION:
        raise InputError(
            f"{path} is a checkpoint of format version {saved.get('version')!r}; this pagewalk "
            f"reads version {VERSION}",
            "--resume",
        )
    _refuse_another(path, saved, ident)
    return saved


def _refuse_another(path: str, saved: dict[str, Any], ident: dict[str, Any]) -> None:
    theirs, ours = saved.get("scenario") or {}, ident["scenario"]
    if theirs.get("sha256") != ours["sha256"]:
        raise InputError(
            f"{path} is a checkpoint of another scenario: {theirs.get('file')!r} with sha256 "
            f"{str(theirs.get('sha256'))[:12]}..., not {ours['file']!r} with "
            f"{ours['sha256'][:12]}...",
            "--resume",
        )
    for key, name in _SAME:
        if saved.get(key) != ident[key]:
            raise InputError(
                f"{path} is a checkpoint of a search with {name} {_show(saved.get(key))}, "
                f"not {_show(ident[key])}",
                "--resume",
            )


def _show(value: Any) -> str:
    return "none" if value is None else json.dumps(value)


def check_loaded(path: str, cursor: Cursor, saved: dict[str, Any]) -> None:
    """Take the checkpoint back into ``cursor``; a file whose fields are
    not what pagewalk writes is bad input, not a traceback."""
    try:
        cursor.resume_from(saved)
        search = saved["search"]
        if "tree" in search:
            # decoded once, here: the cursor restores its tree from this
            search["tree"] = {**search["tree"], "footprints": _footprints(search["tree"])}
            TreeSearch(False).restore(search["tree"])
            _check_prefixes([] if search["next"] is None else [search["next"]])
        elif "tasks" in search:
            _check_prefixes(search["tasks"])
        else:
            int(search["length"])
    except (KeyError, TypeError, ValueError, IndexError, SyntaxError, AttributeError) as err:
        raise InputError(
            f"{path} is not a valid checkpoint ({type(err).__name__}: {err})", "--resume"
        ) from None


def _check_prefixes(prefixes: Any) -> None:
    if not isinstance(prefixes, list) or not all(
        isinstance(p, list) and all(isinstance(q, int) for q in p) for p in prefixes
    ):
        raise ValueError("a schedule prefix is not a list of task numbers")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either does not exist (yet)
        return False


def open_cursor(
    tally: Tally,
    search_of: tuple,
    collect: bool,
    checkpoint: str | None,
    resume: str | None,
    spread: bool,
    interval: float = INTERVAL,
) -> Cursor:
    """The cursor of a search with ``--checkpoint`` or ``--resume``:
    ``search_of`` is (scenario, profile, strategy, bound, seed, stop_first,
    max_steps); ``spread``: the search runs in several processes (dfs
    subtrees or random chunks, explore/parallel.py).  A dfs checkpoint of
    one process resumes in several, not the other way round: subtrees
    explored apart have no single path to go on from."""
    scenario = search_of[0]
    if checkpoint is not None and _same_file(checkpoint, scenario.path):
        raise InputError(f"{checkpoint} is the scenario file itself", "--checkpoint")
    ident = identity(*search_of, collect=collect)
    cursor = Cursor(tally, checkpoint, ident, interval)
    if resume is not None:
        saved = load(resume, ident)
        if "tasks" in (saved.get("search") or {}) and not spread:
            raise InputError(
                f"{resume} is a checkpoint of a dfs in several processes: resume it with "
                "--workers N (N > 1) or --cluster",
                "--resume",
            )
        check_loaded(resume, cursor, saved)
    return cursor
