"""Load YAML while remembering the line of every key, so validation errors can name the line.

Conventions (a rubric is small, hand-written data; anything else is refused with the file and line):
- anchors and aliases (``&name`` / ``*name``) are refused: nested aliases expand exponentially
  ("billion laughs": a 432-byte file of them took 3 GB), and a rubric has no need for them;
- a mapping may not give the same key twice (YAML itself forbids it; PyYAML would keep the last one);
- nesting deeper than :data:`MAX_DEPTH` levels is refused (instead of a ``RecursionError``).

The file is parsed once; the data is constructed from the same node tree whose marks give the lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from judgekit.io.errors import JudgekitError

Loc = tuple[str | int, ...]
MAX_DEPTH = 100  # levels of nested mappings/sequences; the shipped rubrics use 5

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that judgekit does not accept (aliases, duplicate keys, deep nesting)."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors/aliases, duplicate keys or unbounded nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(problem="YAML anchors and aliases (&name, *name) are not allowed; write the value out",
                           problem_mark=event.start_mark)
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise _Refused(problem=f"nested more than {MAX_DEPTH} levels deep",
                                   problem_mark=event.start_mark)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                line = key_node.start_mark.line + 1
                if seen is not None:
                    raise _Refused(problem=f"duplicate key {key!r} (first given at line {seen})",
                                   problem_mark=key_node.start_mark)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), lines)
            # the value's own line wins only for nested blocks; keep the key's line for scalars
            if isinstance(value_node, yaml.ScalarNode):
                lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _walk(child, (*loc, i), lines)


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse ``path`` with PyYAML's safe loader under the module's rules; return the data and a map from key
    path to 1-based line. Raises :class:`JudgekitError` with the file and line for anything refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JudgekitError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JudgekitError(f"cannot read file: {exc}", path=path) from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        assert exc.problem_mark is not None
        raise JudgekitError(str(exc.problem), path=path, line=exc.problem_mark.line + 1) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise JudgekitError(f"invalid YAML: {problem}", path=path, line=line) from None
    except RecursionError:  # not reached under MAX_DEPTH; a last guard so no traceback escapes
        raise JudgekitError(f"nested more than {MAX_DEPTH} levels deep", path=path) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest prefix of ``loc`` that appears in the file."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None

