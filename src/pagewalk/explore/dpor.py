"""Stateless exploration of thread interleavings: depth-first search over
schedules, with dynamic partial-order reduction and sleep sets (``dpor``) or
without reduction (``dfs``).

Every execution re-runs the scenario from scratch.  The search keeps one node
per step of the current execution: which tasks were enabled there, which
ones still have to be tried (backtrack), which were tried (done) and which
need not be (sleep).  After each execution every race -- two dependent steps
of different tasks with no other step ordered between them -- is reversed
at the earlier step's node by source-DPOR's rule (Abdulla et al., POPL 2014):
a task is added there only when no *initial* of the reversed sequence is
already scheduled, done or asleep, so that with the sleep sets each
Mazurkiewicz trace is explored once (some executions may still end blocked
by their sleep set: that needs wakeup trees, see docs/explore.md).  A
preemption bound, when given, skips branches that would switch away from a
task that could have continued more than K times.

The state kept is plain data (lists and sets of task numbers, and the
events, which pickle), so that a search can be saved and resumed.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from ..sched.scheduler import Chooser, Event, Scheduler, Task, dependent
from .engine import Execution, Pruned
from .races import RaceState


class Node:
    """One step of the current path: the tasks enabled there and what each
    was about to do, the tasks still to try there (backtrack), tried (done)
    and not needing a try (sleep), the task chosen, and the preemptions
    along the path up to and including that choice.  A plain class with a
    positional constructor: one is made at every step of every execution."""

    __slots__ = ("backtrack", "choice", "done", "enabled", "events", "preemptions", "sleep")

    def __init__(
        self,
        enabled: list[int],
        events: list[Event],
        backtrack: set[int],
        done: set[int],
        sleep: AbstractSet[int],
        choice: int = -1,
        preemptions: int = 0,
    ) -> None:
        self.enabled = enabled
        self.events = events
        self.backtrack = backtrack
        self.done = done
        self.sleep = sleep
        self.choice = choice
        self.preemptions = preemptions

    def __repr__(self) -> str:
        return (
            f"Node(enabled={self.enabled}, choice={self.choice}, done={sorted(self.done)}, "
            f"backtrack={sorted(self.backtrack)}, sleep={sorted(self.sleep)})"
        )


#: a dfs node's sleep set: nothing sleeps without the reduction (shared,
#: never changed: a dfs adds to no sleep set)
NO_SLEEP: frozenset[int] = frozenset()


class TreeChooser(Chooser):
    """Follows a prefix of the search tree, then extends it: the last task
    while it is enabled and not asleep, else the lowest-numbered one."""

    def __init__(self, search: TreeSearch, prefix: list[int]) -> None:
        self.search = search
        self.judges_sections = search.reduce  # a plain dfs analyses no races
        self.prefix = prefix
        self.depth = 0  # the step the chooser is asked next (past the replayed ones)

    def replayed(self) -> list[Node]:
        """The nodes of the prefix that already run its choice and have it
        done: the steps a recording scheduler takes without asking (this
        chooser's count of steps starts past them)."""
        stack = self.search.stack
        if self.prefix is self.search.built:
            # next_prefix made it from the path: every node's choice but the last's
            n = len(self.prefix) - 1
        else:
            n = 0
            for node, choice in zip(stack, self.prefix, strict=False):  # the stack may be shorter
                if node.choice != choice or choice not in node.done:
                    break
                n += 1
        self.depth = n
        return stack[:n]

    def choose(self, sched: Scheduler, enabled: list[Task]) -> Task:
        depth = self.depth
        self.depth = depth + 1
        if depth < len(self.prefix):
            return self._follow(sched, enabled, depth)
        s = self.search
        ids, events = sched.states[-1]
        if s.reduce:
            sleep = s.child_sleep(depth)
            awake = [t for t in enabled if t.index not in sleep] if sleep else enabled
            s.stack.append(Node(ids, events, set(), set(), sleep))
            if not awake:
                raise Pruned
        else:  # dfs: every enabled task is a branch, none sleeps
            awake = enabled
            s.stack.append(Node(ids, events, set(ids), set(), NO_SLEEP))
        last = sched.last
        pick = last if last is not None and last in awake else awake[0]
        s.take(depth, pick.index)
        return pick

    def _follow(self, sched: Scheduler, enabled: list[Task], depth: int) -> Task:
        """The prefix's choice at ``depth``, past the nodes replayed: there
        the branch leaves the tree's path (or a resumed search's undone
        branch, which has the choice but not the done mark, is taken again),
        so the node is taken."""
        s = self.search
        choice = self.prefix[depth]
        if depth >= len(s.stack):
            # a subtree task (parallel dfs): the path above is another task's
            ids, events = sched.states[-1]
            s.stack.append(Node(ids, events, set(), set(), set()))
        s.take(depth, choice)
        for t in enabled:
            if t.index == choice:
                return t
        raise KeyError(choice)


class TreeSearch:
    """The search tree and the backtracking logic shared by dpor and dfs."""

    def __init__(self, reduce: bool, preemption_bound: int | None = None) -> None:
        self.reduce = reduce
        self.bound = preemption_bound
        self.stack: list[Node] = []
        self.bounded = False  # a branch was skipped because of the bound
        #: the race analysis' state after the last execution (explore/races.py)
        self.races: RaceState | None = None
        #: the last prefix ``next_prefix`` returned: the path's choices (each
        #: done at its node) and one branch to take at the last node
        self.built: list[int] | None = None

    def take(self, depth: int, choice: int) -> None:
        """Record that the node at ``depth`` runs task ``choice`` now."""
        stack = self.stack
        node = stack[depth]
        node.choice = choice
        node.done.add(choice)
        if depth:  # preemptions_before() + is_preemption(), inline: once a step
            parent = stack[depth - 1]
            prev = parent.choice
            node.preemptions = parent.preemptions + (choice != prev and prev in node.enabled)
        else:
            node.preemptions = 0

    # -- preemptions ---------------------------------------------------------------
    def preemptions_before(self, depth: int) -> int:
        return self.stack[depth - 1].preemptions if depth else 0

    def is_preemption(self, depth: int, choice: int) -> int:
        if depth == 0:
            return 0
        prev = self.stack[depth - 1].choice
        return int(choice != prev and prev in self.stack[depth].enabled)

    def within_bound(self, depth: int, choice: int) -> bool:
        if self.bound is None:
            return True
        total = self.preemptions_before(depth) + self.is_preemption(depth, choice)
        if total > self.bound:
            self.bounded = True
            return False
        return True

    # -- sleep sets --------------------------------------------------------------------
    def child_sleep(self, depth: int) -> set[int]:
        """sleep(n+1) = tasks asleep or already explored at n whose pending
        event is independent of the step taken at n."""
        if depth == 0:
            return set()
        parent = self.stack[depth - 1]
        chosen = parent.events[parent.choice]
        carry = (parent.sleep | parent.done) - {parent.choice}
        return {q for q in carry if not dependent(parent.events[q], chosen)}

    # -- DPOR race analysis --------------------------------------------------------------
    def analyze(self, ex: Execution) -> None:
        """Add backtrack points for every race in the execution just run.

        A step j of another task races with step i when they are dependent
        and j happens before i through no other step: every such j, not only
        the last one (with reads that commute, two reads can both race with
        one write, and reversing the later race does not reverse the
        earlier).  The task to run first at j is an *initial* of the reversed
        race: the first task whose steps between j and i happen before i
        (computed from i's whole clock), else the racing task itself.

        Races whose later step lies in the part replayed from an execution
        before (``ex.analysed``) are not reversed again: that execution
        reversed them, and a second time would change nothing -- a node's
        backtrack and done sets only grow, its sleep set is fixed."""
        if not self.reduce:
            return
        steps = ex.steps
        # every state lists each task's pending event: as many as there are tasks
        n_tasks = len(ex.states[0][1]) if ex.states else 0
        analysed = ex.analysed
        state = self.races
        if state is None or state.n_tasks != n_tasks or not analysed:
            state = self.races = RaceState(n_tasks)
        # the last execution's state holds for the steps both share
        start = min(analysed, len(state))
        state.rewind(start)
        clocks = state.clocks
        for i in range(start, len(steps)):
            p, ev = steps[i]
            races = state.step(i, p, ev)
            if i < analysed:  # reversed when an execution before found it
                continue
            for j in races:
                self._reverse(j, i, steps, clocks)

    def _reverse(self, j: int, i: int, steps: list, clocks: list[list[int]]) -> None:
        """Make node ``j`` explore the race (j, i) reversed, unless it already
        will: source-DPOR's test (Abdulla et al., POPL 2014), which adds a
        task only when no initial of ``notdep(j).i`` is scheduled, done or
        asleep at ``j``.  An initial: a task whose first step in that
        sequence has no predecessor there."""
        if j >= len(self.stack):
            return
        node = self.stack[j]
        initials = self._initials(j, i, steps, clocks)
        enabled = [q for q in initials if q in node.enabled]
        covered = node.backtrack | node.done | node.sleep
        if any(q in covered for q in enabled):
            return
        if enabled:
            # the initial that leads to step i, else i's task, else any
            prefer = (self._initial(j, i, steps, clocks[i]), steps[i][0])
            pick = next((q for q in prefer if q in enabled), enabled[0])
            if self.within_bound(j, pick):
                node.backtrack.add(pick)
            return
        # no initial can run at j (it waits for a lock held across j): every task
        node.backtrack.update(
            q for q in node.enabled if q not in node.done and self.within_bound(j, q)
        )

    @staticmethod
    def _initials(j: int, i: int, steps: list, clocks: list[list[int]]) -> list[int]:
        """The initials of ``notdep(j).i``: the steps after j that j does not
        happen before, then step i.  A task's steps in it are a prefix of its
        steps after j (a step after one that j precedes is preceded too), so
        only each task's first step after j can be an initial, and it is one
        when no other task's first step there happens before it."""
        owner = steps[j][0]
        first: dict[int, int] = {}
        for k in range(j + 1, i):
            q = steps[k][0]
            if q not in first and q != owner and clocks[k][owner] < j + 1:
                first[q] = k
        p = steps[i][0]
        first.setdefault(p, i)
        return [
            q
            for q, k in first.items()
            if all(clocks[k][u] <= f for u, f in first.items() if u != q)
        ]

    @staticmethod
    def _initial(j: int, i: int, steps: list, clock: list[int]) -> int | None:
        """The task of the first step after j that happens before step i
        (``clock`` is i's): running it first from j can lead to the reversed
        race (Flanagan and Godefroid's refinement, in the form of Abdulla et
        al.'s initials of ``notdep(j).i``).  None: only i's task moves."""
        for k in range(j + 1, i):
            q = steps[k][0]
            if clock[q] >= k + 1:
                return q
        return None

    # -- next branch ----------------------------------------------------------------------
    def next_prefix(self, floor: int = 0) -> list[int] | None:
        """The schedule prefix of the next branch to run, or None when done
        (never backtracking above depth ``floor``)."""
        stack = self.stack
        while len(stack) > floor:
            todo = self.todo(len(stack) - 1, stack[-1])
            if todo:
                self.built = [n.choice for n in stack[:-1]]
                self.built.append(min(todo))
                return self.built
            stack.pop()
        return None

    def todo(self, depth: int, node: Node) -> set[int]:
        """The branches still to explore at a node: scheduled, neither done
        nor asleep, within the preemption bound (``within_bound`` marks the
        search bounded when it cuts one)."""
        todo = node.backtrack - node.done
        if todo and node.sleep:
            todo -= node.sleep
        if todo and self.bound is not None:
            todo = {q for q in sorted(todo) if self.within_bound(depth, q)}
        return todo

    def pending_prefixes(self, floor: int) -> list[list[int]]:
        """Every branch still to explore below ``floor``, as schedule prefixes."""
        out = []
        for depth in range(floor, len(self.stack)):
            node = self.stack[depth]
            path = [n.choice for n in self.stack[:depth]]
            out += [[*path, q] for q in sorted(self.todo(depth, node))]
        return out

    def start_branch(self, prefix: list[int]) -> None:
        del self.stack[len(prefix) :]

    # -- checkpoints (explore/checkpoint.py) -------------------------------------------
    def state(self) -> dict[str, Any]:
        """The search's state as plain data: its nodes, and each distinct
        footprint once (``footprints``, tuples; a node names them by index).
        Only an event's footprint matters to the search (``dependent``)."""
        table: dict[tuple, int] = {}
        nodes = [
            {
                "enabled": n.enabled,
                "events": [table.setdefault(e.footprint, len(table)) for e in n.events],
                "backtrack": sorted(n.backtrack),
                "done": sorted(n.done),
                "sleep": sorted(n.sleep),
                "choice": n.choice,
                "preemptions": n.preemptions,
            }
            for n in self.stack
        ]
        return {"bounded": self.bounded, "footprints": list(table), "nodes": nodes}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a :meth:`state` (the search's reduce and bound are its own)."""
        events = [Event("restored", None, fp) for fp in state["footprints"]]
        self.bounded = bool(state["bounded"])
        self.stack = [
            Node(
                [int(q) for q in n["enabled"]],
                [events[i] for i in n["events"]],
                set(n["backtrack"]),
                set(n["done"]),
                set(n["sleep"]),
                int(n["choice"]),
                int(n["preemptions"]),
            )
            for n in state["nodes"]
        ]

    def coverage(self, levels: int = 8) -> dict[str, Any]:
        """How much of the tree is done, seen from the current path (whose
        last node's ``done`` are all finished, the branch to run next being
        pending): at the first ``levels`` nodes with more than one branch,
        [finished, known] branches (for dpor, known so far), and the number
        of branches pending along the path."""
        first: list[list[int]] = []
        pending = 0
        bounded = self.bounded  # only a look: leave the search's flag as it was
        for depth, node in enumerate(self.stack):
            todo = self.todo(depth, node)
            last = depth == len(self.stack) - 1
            known = len(node.done) + len(todo)
            if known > 1 and len(first) < levels:
                # a path node's choice is under way; the last node's are all finished
                first.append([len(node.done) - (0 if last else 1), known])
            pending += len(todo)
        self.bounded = bounded
        return {"levels": first, "pending": pending}
