"""Readable value names in ``eo-edge ... --help``.

Recent typer releases (0.29 here) print a parameter's Python type in the help's type column
(``<path>``, ``<list[Path]>``, ``<str>``, and ``<bool>`` for a flag that takes no value) and, for a
positional argument, do so even when a ``metavar=`` names it. eo-edge gives its options and
arguments metavars (``FILE``, ``DIR``, ``N``, ``NAME``...); :func:`install` makes typer show them,
hides the type of flags (``--quiet``, ``--resume/--no-resume``, ``--help``), and turns any parameter
left without a metavar into a plain upper-case name (``PATH``, ``TEXT``, ``N``, ``FLOAT``,
``PATH...``). Older typer releases print click's upper-case names themselves; there this changes
nothing.
"""

from __future__ import annotations

import re
from typing import Any

#: typer's type label -> the name shown instead (lists get "...")
TYPE_NAMES = {"path": "PATH", "file": "FILE", "dir": "DIR", "str": "TEXT", "int": "N", "float": "FLOAT",
              "Path": "PATH", "bool": ""}


def readable_type(label: str) -> str:
    """``"<list[Path]>"`` -> ``"PATH..."``, ``"<int>"`` -> ``"N"``, ``"<bool>"`` -> ``""``; a label
    with no known name (``"<a|b>"``) loses only its angle brackets (``"a|b"``)."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    m = re.fullmatch(r"list\[(.+)\]", inner)
    if m:
        base = TYPE_NAMES.get(m.group(1), m.group(1))
        return f"{base}..." if base else ""
    return TYPE_NAMES.get(inner, inner)


def install() -> bool:
    """Patch typer's help rendering as described in the module docstring (idempotent).

    Returns:
        True when typer's rich help was patched; False on a typer without typed help columns.
    """
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - not typer's layout
        return False
    if not all(hasattr(c, "display_type_rich") and hasattr(c, "display_type") for c in (TyperArgument, TyperOption)):
        return False  # pragma: no cover - an older typer: click's names already
    if getattr(TyperOption.display_type_rich, "_eo_edge", False):
        return True

    def option_type(self: Any, ctx: Any) -> str:
        if self.metavar is not None:
            return self.metavar
        if getattr(self, "is_flag", False):
            return ""
        name = readable_type(str(self.display_type(ctx)))
        return f"{name}..." if self.nargs != 1 and name and not name.endswith("...") else name

    def argument_type(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:  # the name column shows the metavar already
            return None
        return readable_type(str(self.display_type(ctx))) or None

    option_type._eo_edge = argument_type._eo_edge = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = option_type
    TyperArgument.display_type_rich = argument_type
    return True
