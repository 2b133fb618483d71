"""YAML to plain data, remembering where every key and value was written (line, column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from aichaos.experiment.errors import KeyPath, Problem
from aichaos.safe_yaml import BoundedLoader, check_flow_nesting


@dataclass(frozen=True)
class Mark:
    """A 1-based position in the file."""

    line: int
    column: int


@dataclass
class Positions:
    """Where each path's key and value start in the file."""

    keys: dict[KeyPath, Mark] = field(default_factory=dict)
    values: dict[KeyPath, Mark] = field(default_factory=dict)

    def of(self, path: KeyPath, *, key: bool = False) -> Mark | None:
        """The position of `path` (its key if asked), or of its nearest written ancestor."""
        for depth in range(len(path), -1, -1):
            prefix = path[:depth]
            if key and depth == len(path) and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return None


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, loader: BoundedLoader, file: str | None) -> None:
        self.loader, self.file = loader, file
        self.positions = Positions()
        self.problems: list[Problem] = []
        self.open: set[int] = set()  # collections being built: an alias back to one is a cycle

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.positions.values[path] = _mark(node)
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.open:
            mark = _mark(node)
            self.problems.append(
                Problem(
                    "an alias refers to a collection that contains it",
                    path,
                    self.file,
                    mark.line,
                    mark.column,
                )
            )
            return None
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<:` merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
                key = str(key)
            if key in result:
                mark = _mark(key_node)
                self.problems.append(
                    Problem(
                        f"duplicate key {key!r} (the later value would silently win)",
                        (*path, key),
                        self.file,
                        mark.line,
                        mark.column,
                    )
                )
                continue
            child: KeyPath = (*path, key)
            self.positions.keys[child] = _mark(key_node)
            result[key] = self.build(value_node, child)
        return result


def load_yaml(text: str, file: str | None = None) -> tuple[Any, Positions, list[Problem]]:
    """Parse one YAML document into plain data plus positions; syntax errors become problems.

    The limits of `aichaos.safe_yaml` apply (nesting depth, aliases, expansion): a
    document over them is a problem at the node where the limit was crossed.
    """
    loader: BoundedLoader | None = None
    try:
        check_flow_nesting(text)
        loader = BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, Positions(), []
        builder = _Builder(loader, file)
        data = builder.build(node, ())
        return data, builder.positions, builder.problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        return None, Positions(), [Problem(f"invalid YAML: {message}", (), file, line, column)]
    except yaml.reader.ReaderError as exc:  # a control character, found before parsing
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        message = f"invalid YAML: character {exc.character!r} is not allowed in YAML text"
        return None, Positions(), [Problem(message, (), file, line, column)]
    except yaml.YAMLError as exc:
        return None, Positions(), [Problem(f"invalid YAML: {exc}", (), file)]
    finally:
        if loader is not None:
            loader.dispose()
