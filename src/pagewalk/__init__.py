"""pagewalk: an executable, model-checkable model of the Linux 2.6.15
memory-management core (the tree of "mm: follow_page with inner ptlock").

The public API::

    from pagewalk import Kernel, load_scenario, run_scenario

``Kernel`` is a simulated machine with processes, mappings, page tables and
the system calls; the kernel functions themselves (``follow_page``,
``get_user_pages``, ``handle_mm_fault``, ...) are in ``pagewalk.kernel.*``
under their kernel names.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, ModelFailure, PagewalkError
from .kernel.kernel import Access, Kernel
from .kernel.semantics import PROFILES, Semantics, get_semantics
from .scenario.loader import load_scenario, parse_scenario
from .scenario.runner import RunResult, run_scenario

__all__ = [
    "PROFILES",
    "Access",
    "InputError",
    "Kernel",
    "ModelFailure",
    "PagewalkError",
    "RunResult",
    "Semantics",
    "__version__",
    "get_semantics",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
]
