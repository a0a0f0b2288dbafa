"""Systematic exploration of the interleavings of a scenario's threads.

from pagewalk.explore import explore, replay
result = explore(scenario, semantics="2.6.22")          # DPOR by default
if result.violation:
    ex = replay(scenario, result.violation.schedule, "2.6.22")
"""

from .api import ExploreResult, Violation, explore, replay

__all__ = ["ExploreResult", "Violation", "explore", "replay"]
