"""Problems found in a matrix file -- a field path and what was wrong -- and their rendering as
`FILE:LINE: field: message` lines (the line looked up from the YAML positions of the field or its parent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

Loc = tuple[str, ...]
Problem = tuple[Loc, str]
#: problems listed in one error message (the rest are counted)
MAX_MESSAGES = 20


def short(value: Any) -> str:
    """repr of a value as quoted in a message, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def line_for(positions: dict[Loc, int], loc: Loc) -> int | None:
    """Line of the field, or of its nearest parent that has one."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in positions:
            return positions[loc[:end]]
    return None


def pydantic_problems(err: ValidationError) -> list[Problem]:
    """pydantic's errors as problems with the field path the user wrote."""
    problems: list[Problem] = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        loc = tuple(p for p in loc if p not in {"bootstrap", "registry"} or p == loc[-1])
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        if len(loc) == 3 and loc[0] == "images" and loc[2] == "name":
            loc = loc[:2]  # the name is the mapping key the user wrote
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "string_pattern_mismatch":
            msg = f"expected a string matching {e['ctx']['pattern']}, got {short(e['input'])}"
        problems.append((loc, msg))
    return problems


def format_problems(path: Path, positions: dict[Loc, int], problems: list[Problem]) -> str:
    """`FILE: invalid matrix (N error(s)):` then one `FILE:LINE: field: message` per problem."""
    lines = [f"{path}: invalid matrix ({len(problems)} error(s)):"]
    for loc, msg in problems[:MAX_MESSAGES]:
        line = line_for(positions, loc)
        where = f"{path}:{line}" if line else str(path)
        lines.append(f"  {where}: {'.'.join(loc) or '(top level)'}: {msg}")
    if len(problems) > MAX_MESSAGES:
        lines.append(f"  ... and {len(problems) - MAX_MESSAGES} more")
    return "\n".join(lines)
