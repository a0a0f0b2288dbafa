"""The host-kernel oracle: run a scenario on the model and on the machine's
own kernel, observe both after every step, and classify every difference as
an era difference (a documented kernel change since 2.6.15) or a mismatch.

See docs/oracle.md.  Entry points: :func:`run_oracle` and
``pagewalk oracle FILE``.
"""

from __future__ import annotations

from .classify import RULES
from .libc import host_problem
from .run import OracleReport, run_oracle

__all__ = ["RULES", "OracleReport", "host_problem", "run_oracle"]
