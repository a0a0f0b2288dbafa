"""Errors that leave the model.

Two kinds matter to users and must never be confused:

* :class:`InputError` -- the scenario file or command line is wrong.  The CLI
  prints its one-line message and exits with status 2.
* :class:`ModelFailure` -- the modelled kernel hit ``BUG()``/``BUG_ON()`` or an
  invariant broke.  It carries the kernel location, and is reported as a failed
  execution, not as a crash of the tool.

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
