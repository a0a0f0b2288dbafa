"""``pagewalk profiles [--json]``: every semantics profile, the tree it is
built on and its switches, each with the kernel commit it stands for, and
the old names (aliases) that still select it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .kernel.semantics import ALIASES, DEFAULT_PROFILE, PROFILES, profile_base, profile_switches


def profiles_table() -> list[dict[str, Any]]:
    """The spec's JSON: ``[{"name", "base", "switches": [{"name", "commit",
    "summary"}]}]``, plus each profile's ``aliases`` (``{"name", "note"}``)."""
    out = []
    for name, sem in PROFILES.items():
        aliases = [
            {"name": old, "note": note} for old, (new, note) in ALIASES.items() if new == name
        ]
        out.append(
            {
                "name": name,
                "base": profile_base(sem),
                "switches": profile_switches(sem),
                "aliases": aliases,
            }
        )
    return out


def _text(table: list[dict[str, Any]]) -> str:
    default = ALIASES[DEFAULT_PROFILE][0] if DEFAULT_PROFILE in ALIASES else DEFAULT_PROFILE
    lines = []
    for row in table:
        mark = "  (default)" if row["name"] == default else ""
        lines.append(f"{row['name']}{mark}")
        lines.append(f"    base: {row['base']}")
        for alias in row["aliases"]:
            lines.append(f"    old name {alias['name']!r}: {alias['note']}")
        if not row["switches"]:
            lines.append("    switches: none (the base tree as it is)")
        for sw in row["switches"]:
            lines.append(f"    + {sw['name']}  [{sw['commit']}] {sw['summary']}")
    return "\n".join(lines)


def cmd_profiles(args: argparse.Namespace) -> int:
    table = profiles_table()
    print(json.dumps(table, indent=2) if args.json else _text(table))
    return 0
