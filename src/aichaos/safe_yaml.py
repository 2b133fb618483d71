"""YAML reading with limits, for text that may be hostile (files, CLI words, admin bodies).

PyYAML's safe loader builds nothing dangerous, but it has no limits: a 300-deep nesting
raises `RecursionError`, and an "alias bomb" (a few lines whose aliases refer to aliases)
expands to billions of values as soon as anything walks the result. `BoundedLoader`
refuses both while composing, with the position of the offending node:

* nesting deeper than `MAX_DEPTH` collections;
* more than `MAX_ALIASES` aliases, or a document that would expand to more than
  `MAX_VALUES` values once every alias is followed;
* a scalar its constructor cannot build (a 5,000-digit integer is over Python's
  `int_max_str_digits`, `2024-13-45` is no date): PyYAML raises `ValueError` there, here
  it is a `ConstructorError` with the scalar's position.

    data = safe_load(text)          # raises yaml.YAMLError (LimitError for a limit)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

MAX_DEPTH = 64
MAX_ALIASES = 10_000
MAX_VALUES = 100_000
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
"""The largest file an experiment (or a body sent to the admin API) may be."""


class LimitError(yaml.MarkedYAMLError):
    """The document is over one of this module's limits; `problem_mark` says where."""


class BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses documents over the module's limits (`LimitError`)."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LimitError(
                    problem=f"more than {MAX_ALIASES} aliases", problem_mark=self._mark()
                )
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LimitError(
                    problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=self._mark()
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            check_expansion(node)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            reason = str(exc).split(";")[0]  # not Python's advice to change its limit
            problem = f"cannot read the value {_short(node)}: {reason}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    def _mark(self) -> yaml.Mark | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        return event.start_mark if event is not None else None


def check_expansion(root: yaml.Node) -> None:
    """Raise `LimitError` when following every alias of `root` gives over `MAX_VALUES` values."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # collections being walked: an alias back to one is a cycle
    # Iterative post-order walk: sizes of shared (aliased) nodes are computed once.
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack[-1]
        if id(node) in sizes:
            stack.pop()
            continue
        children = _children(node)
        if id(node) not in open_:
            open_.add(id(node))
            stack.extend(c for c in children if id(c) not in sizes and id(c) not in open_)
            continue
        stack.pop()
        open_.discard(id(node))
        # a cycle (an alias to an enclosing collection) counts as one value here
        total = 1 + sum(sizes.get(id(child), 1) for child in children)
        if total > MAX_VALUES:
            raise LimitError(
                problem=f"the document expands to more than {MAX_VALUES} values"
                " (aliases that refer to aliases)",
                problem_mark=node.start_mark,
            )
        sizes[id(node)] = total


_DEEP_FLOW = re.compile(rf"(?:[\[{{][\s,]*){{{MAX_DEPTH + 1}}}")


def check_flow_nesting(text: str) -> None:
    """Refuse a run of more than `MAX_DEPTH` opening brackets (`[[[[...`) before scanning:
    PyYAML's scanner needs time quadratic in such a run before the depth limit can act."""
    found = _DEEP_FLOW.search(text)
    if found is not None:
        at = found.start()
        before = text[:at]
        column = at - before.rfind("\n") - 1
        mark = yaml.Mark("<document>", at, before.count("\n"), column, None, None)  # type: ignore[arg-type]
        raise LimitError(problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=mark)


def _short(node: yaml.Node) -> str:
    value = node.value if isinstance(node, yaml.ScalarNode) else ""
    return repr(value if len(value) <= 20 else value[:20] + "...")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def compose(text: str) -> yaml.Node | None:
    """`yaml.compose` within the limits (for callers that want positions); raises
    `yaml.YAMLError`."""
    node: yaml.Node | None = _with_loader(text, BoundedLoader.get_single_node)
    return node


def safe_load(text: str) -> Any:
    """`yaml.safe_load` within the limits; raises `yaml.YAMLError` (also for bad characters)."""
    return _with_loader(text, BoundedLoader.get_single_data)


def _with_loader(text: str, step: Callable[[BoundedLoader], Any]) -> Any:
    if len(text) > MAX_DOCUMENT_BYTES:
        raise LimitError(problem=f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    check_flow_nesting(text)
    loader = BoundedLoader(text)
    try:
        return step(loader)
    finally:
        loader.dispose()


__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_VALUES",
    "BoundedLoader",
    "LimitError",
    "check_expansion",
    "check_flow_nesting",
    "compose",
    "safe_load",
]
