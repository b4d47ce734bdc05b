"""Loading untrusted matrix files: limits first, then a YAML reader that cannot be made to blow up.

- size: at most TFMH_MAX_MATRIX_BYTES (default 1 MiB), checked before reading;
- encoding: strict UTF-8 (a BOM is allowed); anything else is refused with the line of the first bad byte;
- YAML: events from the (C) parser are composed here, iteratively (no recursion), with
  * nesting capped at MAX_DEPTH levels,
  * anchors/aliases allowed, but the document expanded through its aliases may hold at most MAX_NODES
    nodes (an alias bomb stops at the alias that crosses the budget; recursive aliases are refused),
  * duplicate mapping keys refused, only plain scalar keys, one document per file,
  * only the standard scalar tags (str, int, float, bool, null; timestamps stay strings),
  * `<<` merge keys as in PyYAML's SafeLoader.

Every error is a ConfigError `FILE:LINE: what was found; what was expected`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

DEFAULT_MAX_BYTES = 1 << 20
MAX_DEPTH = 32
#: nodes of the document after alias expansion (a real matrix has a few hundred)
MAX_NODES = 20_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER: Any = yaml.resolver.Resolver()
_CONSTRUCTOR: Any = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:merge",
}
Positions = dict[tuple[str, ...], int]


def env_limit(name: str, default: int) -> int:
    """A positive integer limit from the environment (ConfigError when set to something else)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name}: expected a positive integer, got {raw!r}")
    return value


def read_text(path: Path) -> str:
    """The file's text, within the size limit and strictly UTF-8 (BOM stripped)."""
    limit = env_limit("TFMH_MAX_MATRIX_BYTES", DEFAULT_MAX_BYTES)
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read matrix file: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ConfigError(
            f"{path}: matrix file is larger than {limit} bytes (limit TFMH_MAX_MATRIX_BYTES); "
            "expected a small YAML file"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}:1: the file is UTF-16 (byte order mark); expected UTF-8 text")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: NUL byte (UTF-16 or binary data?); expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise ConfigError(
            f"{path}:{line}: byte 0x{bad} is not UTF-8 (Latin-1 or another encoding?); "
            "expected UTF-8 text (save the file as UTF-8)"
        ) from None


@dataclass
class _Frame:
    kind: str  # "map" | "seq"
    path: tuple[str, ...]
    line: int
    anchor: str | None
    value: Any
    weight: int = 1
    #: map only: the pending key (constructed) and its line; explicit keys; merge sources
    key: Any = None
    key_line: int = 0
    has_key: bool = False
    seen: dict[Any, int] = field(default_factory=dict)
    merges: list[tuple[Any, int]] = field(default_factory=list)


class _Fail(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _scalar(event: Any, line: int) -> Any:
    tag = event.tag
    if tag in (None, "!"):
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag not in _SCALAR_TAGS:
        raise _Fail(
            line, f"tag {tag} is not allowed; expected plain values (strings, numbers, booleans, null)"
        )
    if tag in {_STR, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge"}:
        return event.value
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
    try:
        return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
    except (ValueError, yaml.YAMLError) as exc:
        raise _Fail(
            line,
            f"{event.value[:40]!r} is not a valid {tag.rsplit(':', 1)[-1]}: {str(exc).split(';')[0][:120]}",
        ) from None


def _is_merge_key(event: Any) -> bool:
    return bool(event.value == "<<" and event.tag in (None, "!") and event.implicit[0])


def compose(text: str) -> tuple[Any, Positions]:
    """The document as Python values plus the line of every node, keyed by its path (mapping keys and
    list indexes as strings). Raises _Fail(line, message)."""
    positions: Positions = {}
    anchors: dict[str, tuple[Any, int]] = {}
    stack: list[_Frame] = []
    root: Any = None
    total = 0
    documents = 0

    def place(
        value: Any, weight: int, line: int, anchor: str | None, is_merge_key: bool = False, new: int = 1
    ) -> None:
        """Attach a finished node (`weight`: its nodes after expansion; `new`: how many of them were not
        counted yet: 1 for a scalar or a closing collection, all of them for an alias)."""
        nonlocal root, total
        total += new
        if total > MAX_NODES:
            raise _Fail(
                line,
                f"the document expands to more than {MAX_NODES} nodes (through anchors/aliases?); "
                "expected a small matrix",
            )
        if anchor is not None:
            anchors[anchor] = (value, weight)
        if not stack:
            root = value
            positions[()] = line
            return
        top = stack[-1]
        top.weight += weight
        if top.kind == "seq":
            path = (*top.path, str(len(top.value)))
            positions.setdefault(path, line)
            top.value.append(value)
            return
        if not top.has_key:
            if is_merge_key:
                value = _MERGE
            elif isinstance(value, (dict, list)):
                raise _Fail(line, "a mapping key must be a plain value, not a mapping or list")
            if value is not _MERGE and value in top.seen:
                raise _Fail(
                    line, f"duplicate key {value!r} (first at line {top.seen[value]}); expected unique keys"
                )
            if value is not _MERGE:
                top.seen[value] = line
            top.key, top.key_line, top.has_key = value, line, True
            return
        key = top.key
        top.has_key = False
        if key is _MERGE:
            top.merges.append((value, line))
            return
        path = (*top.path, str(key))
        positions[path] = top.key_line
        top.value[key] = value

    for event in yaml.parse(text, Loader=_Loader):
        mark = getattr(event, "start_mark", None)
        line = mark.line + 1 if mark is not None else 1
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Fail(line, "a second YAML document (---); expected exactly one document")
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise _Fail(line, f"nesting deeper than {MAX_DEPTH} levels; expected a shallow matrix")
            if event.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                raise _Fail(line, f"tag {event.tag} is not allowed; expected plain mappings and lists")
            if stack and stack[-1].kind == "map" and not stack[-1].has_key:
                raise _Fail(line, "a mapping key must be a plain value, not a mapping or list")
            path: tuple[str, ...] = ()
            if stack:
                parent = stack[-1]
                if parent.kind == "seq":
                    path = (*parent.path, str(len(parent.value)))
                else:
                    path = parent.path if parent.key is _MERGE else (*parent.path, str(parent.key))
            is_map = isinstance(event, yaml.MappingStartEvent)
            stack.append(_Frame("map" if is_map else "seq", path, line, event.anchor, {} if is_map else []))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = stack.pop()
            if frame.kind == "map":
                _apply_merges(frame)
            place(frame.value, frame.weight, frame.line, frame.anchor)
        elif isinstance(event, yaml.ScalarEvent):
            is_merge = bool(
                stack and stack[-1].kind == "map" and not stack[-1].has_key and _is_merge_key(event)
            )
            place(_scalar(event, line), 1, line, event.anchor, is_merge)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise _Fail(
                    line, f"alias *{event.anchor} refers to no finished anchor (undefined or recursive)"
                )
            value, weight = anchors[event.anchor]
            place(value, weight, line, None, new=weight)
    return root, positions


_MERGE: Any = object()


def _apply_merges(frame: _Frame) -> None:
    merged: dict[Any, Any] = {}
    for source, line in frame.merges:
        sources = source if isinstance(source, list) else [source]
        for item in sources:
            if not isinstance(item, dict):
                raise _Fail(line, "a << merge needs a mapping or a list of mappings")
            for key, value in item.items():
                merged.setdefault(key, value)
    if merged:
        frame.value = {**{k: v for k, v in merged.items() if k not in frame.value}, **frame.value}


def load_yaml(path: Path) -> tuple[Any, Positions, str]:
    """Read and compose a matrix file within every limit: (data, positions, text)."""
    text = read_text(path)
    try:
        data, positions = compose(text)
    except _Fail as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(
            f"{path}:{line}: not valid YAML: character {exc.character!r} ({exc.reason}); "
            "expected printable text"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())[:300]}") from None
    return data, positions, text
