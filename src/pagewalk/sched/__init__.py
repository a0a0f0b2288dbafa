"""Deterministic scheduling of simulated tasks (one greenlet each).

``sched`` knows nothing about memory: it runs callables as tasks, parks each
one at its next *visible* operation (a lock acquisition, a yield, a declared
shared access), and lets a chooser decide which parked task moves next.  The
kernel model reaches it through ``k.sched`` (see ``kernel/locks.py``).
"""

from .schedule import decode_schedule, encode_schedule
from .scheduler import Event, Scheduler, Task

__all__ = ["Event", "Scheduler", "Task", "decode_schedule", "encode_schedule"]
