"""Errors that leave the model.

Three kinds matter to users and must never be confused:

* :class:`InputError` -- the scenario file or command line is wrong.  The CLI
  prints its one-line message and exits with status 2.
* :class:`ModelFailure` -- the modelled kernel hit ``BUG()``/``BUG_ON()`` or an
  invariant broke.  It carries the kernel location, and is reported as a failed
  execution, not as a crash of the tool.

* :class:`InternalError` -- a defect of pagewalk itself: a Python exception
  inside the model or the tool.  Never a kernel bug and never a violation:
  the CLI prints it with the schedule that reaches it and the traceback, and
  exits with :data:`EXIT_INTERNAL`.

Kernel *errors* (EFAULT, ENOMEM, ...) are not exceptions at all: the model
returns negative errno values exactly where the kernel does.
"""

from __future__ import annotations


class PagewalkError(Exception):
    """Base class of every error pagewalk raises on purpose."""


class InputError(PagewalkError):
    """Bad user input: a scenario file, a field in it, or a CLI argument.

    ``where`` names the file and field (``"x.toml: setup[2].length"``); the
    message says what is wrong and, where useful, what would be accepted.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)


class ModelFailure(PagewalkError):
    """The modelled kernel reached ``BUG()``/``BUG_ON()`` or broke an invariant.

    ``location`` is the kernel function (and condition) that fired, e.g.
    ``"follow_page: BUG_ON(flags & FOLL_WRITE)"``.
    """

    def __init__(self, location: str, detail: str = "") -> None:
        self.location = location
        self.detail = detail
        super().__init__(f"kernel BUG at {location}" + (f": {detail}" if detail else ""))


#: exit status of the CLI for an internal error (sysexits.h EX_SOFTWARE)
EXIT_INTERNAL = 70


class InternalError(PagewalkError):
    """pagewalk itself failed: ``error`` is the Python exception, ``task`` the
    simulated task it was raised in (if any), ``schedule`` the schedule that
    reaches it (if it happened under a scheduler), ``traceback`` its text."""

    def __init__(
        self, error: str, task: str = "", schedule: str | None = None, traceback: str = ""
    ) -> None:
        self.error = error
        self.task = task
        self.schedule = schedule
        self.traceback = traceback
        where = f" in task {task}" if task else ""
        super().__init__(f"{error}{where}")

    def __reduce__(self) -> tuple:  # picklable: --workers sends it back
        return (InternalError, (self.error, self.task, self.schedule, self.traceback))

    @classmethod
    def of(cls, err: BaseException, task: str = "") -> InternalError:
        """Wrap an unexpected exception, keeping its traceback as text."""
        import traceback

        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return cls(f"{type(err).__name__}: {err}", task, None, text)
