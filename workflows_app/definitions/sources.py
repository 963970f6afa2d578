"""Read JSON or YAML text into documents, with the line of every key and list element.

YAML is read with YAML 1.2 scalars (`on:` stays a key, dates stay text), and refused unread
when its aliases expand it past a small budget (an alias bomb); JSON takes its line numbers
from composing the same text as YAML.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from .checks import MAX_DEPTH
from .problems import Problem

# How many values aliases may add to a document beyond those written out: generous for
# anchors shared by every step (500 steps x a few fields), tiny next to an alias bomb.
ALIAS_NODE_BUDGET = 20_000


@dataclass(slots=True)
class Item:
    """One document of a file: its data, the line of each path, repeated keys."""

    data: Any
    lines: dict[tuple, int]
    repeated: list[tuple[tuple, int]]


def read_json(text: str, source: str) -> tuple[list[Item], list[Problem]]:
    """JSON documents; lines come from composing the same text as YAML when that works."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"JSON syntax error: {error.msg} (line {error.lineno}, column {error.colno})"
        return [], [Problem(source, message, line=error.lineno)]
    return _split(data, *_json_lines(text)), []


def _json_lines(text: str) -> tuple[dict, list]:
    """Lines of valid JSON text, composed as YAML; none where PyYAML cannot read it."""
    try:  # JSON strings hold no raw tabs, and YAML refuses them
        loader = _Loader(text.replace("\t", " "))
    except yaml.YAMLError:  # a character JSON allows and YAML does not, such as #x7f
        return {}, []
    try:
        return _node_lines(loader.get_single_node(), loader)
    except yaml.YAMLError:
        return {}, []  # valid JSON that PyYAML cannot read: no line numbers
    finally:
        loader.dispose()


def read_yaml(text: str, source: str) -> tuple[list[Item], list[Problem]]:
    """YAML documents (separated by ---); a syntax error keeps the documents before it."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:  # refused characters are found before parsing
        return [], [_reader_problem(error, text, source)]
    items: list[Item] = []
    try:
        while loader.check_node():
            loader.aliases.clear()
            node = loader.get_node()
            if bomb := _alias_problem(node, loader.aliases, source):
                return items, [bomb]
            lines, repeated = _node_lines(node, loader)
            data = loader.construct_document(node)
            if data is not None:
                items.extend(_split(data, lines, repeated))
    except yaml.MarkedYAMLError as error:  # syntax errors, and tags such as !!python/object
        return items, [_yaml_problem(error, source)]
    except yaml.YAMLError as error:
        return items, [Problem(source, f"YAML error: {error}")]
    finally:
        loader.dispose()
    return items, []


def _alias_problem(root: yaml.Node, aliases: list, source: str) -> Problem | None:
    """A Problem when aliases make the document much bigger than what is written.

    Composing keeps one node per anchor, however often it is aliased, so this counts the
    expanded size without expanding: a few hundred bytes of nested aliases (7 levels of 9)
    would otherwise cost minutes of CPU and gigabytes in every later walk.
    """
    sizes = _expanded_sizes(root)
    added = sizes[id(root)] - len(sizes)
    if added <= ALIAS_NODE_BUDGET:
        return None
    node, mark, anchor = max(aliases, key=lambda use: (sizes.get(id(use[0]), 1), -use[1].line))
    line = mark.line + 1
    return Problem(
        source,
        f"YAML aliases expand this document by {added:,} values, more than the "
        f"{ALIAS_NODE_BUDGET:,} allowed; it is refused unread (line {line}: alias *{anchor} "
        f"stands for {sizes[id(node)]:,} values). Write the values out, or alias less.",
        line=line,
    )


def _expanded_sizes(root: yaml.Node) -> dict[int, int]:
    """Each node's size with every alias expanded, by id(node); a node that contains itself
    counts once where it recurs. Iterative: one visit per distinct node."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in _child_nodes(node))
        elif key not in sizes and key not in on_path:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _child_nodes(node))
    return sizes


def _child_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _yaml_problem(error: yaml.MarkedYAMLError, source: str) -> Problem:
    """A YAML syntax error as a Problem on the line where it was noticed."""
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    context = f" {error.context}" if error.context else ""
    where = f" (line {line}, column {mark.column + 1})" if mark else ""
    kind = (
        "YAML error"
        if isinstance(error, yaml.constructor.ConstructorError)
        else "YAML syntax error"
    )
    return Problem(source, f"{kind}: {error.problem}{context}{where}", line=line)


def _reader_problem(error: yaml.reader.ReaderError, text: str, source: str) -> Problem:
    """A character YAML does not allow, as a Problem on its line."""
    line = text.count("\n", 0, error.position) + 1
    column = error.position - text.rfind("\n", 0, error.position)
    message = (
        f"YAML syntax error: unacceptable character #x{error.character:04x}: {error.reason} "
        f"(line {line}, column {column})"
    )
    return Problem(source, message, line=line)


def _split(data: Any, lines: dict, repeated: list) -> list[Item]:
    """A list document gives one item per element (paths re-rooted), anything else one item."""
    if not isinstance(data, list):
        return [Item(data, lines, repeated)]
    return [
        Item(
            element,
            {path[1:]: line for path, line in lines.items() if path[:1] == (index,)},
            [(path[1:], line) for path, line in repeated if path[:1] == (index,)],
        )
        for index, element in enumerate(data)
    ]


def _node_lines(node: yaml.Node, loader: yaml.SafeLoader) -> tuple[dict, list]:
    """The line of every key and list element of a composed document, and its repeated keys."""
    lines: dict[tuple, int] = {(): node.start_mark.line + 1}
    repeated: list[tuple[tuple, int]] = []
    _walk(node, (), lines, repeated, loader, frozenset())
    return lines, repeated


def _walk(
    node: yaml.Node,
    path: tuple,
    lines: dict,
    repeated: list,
    loader: yaml.SafeLoader,
    stack: frozenset,
) -> None:
    """Record lines below `node`; `stack` stops at aliases that refer to themselves."""
    if id(node) in stack or len(path) > MAX_DEPTH:
        return
    for key, line, child in _children(node, loader):
        here = (*path, key)
        if here in lines and not isinstance(key, int):
            repeated.append((here, lines[here]))
        lines[here] = line
        _walk(child, here, lines, repeated, loader, stack | {id(node)})


def _children(node: yaml.Node, loader: yaml.SafeLoader) -> Iterator[tuple[Any, int, yaml.Node]]:
    """(index or key, line, child node) of a sequence or mapping node, before merges (<<)."""
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield index, child.start_mark.line + 1, child
    elif isinstance(node, yaml.MappingNode):
        for key_node, child in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            try:
                key = loader.construct_object(key_node)
            except yaml.YAMLError:
                loader.recursive_objects.pop(key_node, None)
                continue
            yield key, key_node.start_mark.line + 1, child


class _Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans (`on:` stays a key), dates stay text.

    Records each alias of the document being composed (node, mark, anchor name), so that an
    alias bomb is found, and its line named, before anything walks the document.
    """

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.aliases: list[tuple[yaml.Node, yaml.Mark, str]] = []

    def compose_node(self, parent, index):
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        event = self.peek_event()
        node = super().compose_node(parent, index)
        self.aliases.append((node, event.start_mark, event.anchor))
        return node


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if not tag.endswith((":bool", ":int", ":timestamp", ":value"))
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
