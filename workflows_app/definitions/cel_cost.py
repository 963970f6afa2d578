"""What a CEL condition may cost: a shape read from its text when it is loaded, and an
estimate against the data when it is evaluated.

The CEL library evaluates without a step limit, and a comprehension (`all`, `exists`,
`exists_one`, `map`, `filter`) inside another multiplies the work by the size of a list: six
nested `.all()` over 20 items took 53 s. So a condition may nest at most MAX_NESTING
comprehensions (refused at validation), and before it runs, its cost is estimated from the
largest list or map in the data: (largest x lists the expression can join + 1) ** nesting.
Over MAX_COST the condition is not evaluated and the instance fails with the reason.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
MAX_NESTING = 3
MAX_LENGTH = 2000
MAX_COST = 1_000_000


@dataclass(frozen=True, slots=True)
class CostShape:
    """How a condition's cost grows: comprehensions nested `nesting` deep, over lists up to
    `joins` times the largest in the data (`a + b` joins lists)."""

    nesting: int = 0
    joins: int = 1

    def estimate(self, largest: int) -> int:
        """Steps the condition may take when no list or map in its data is over `largest`."""
        return ((largest + 1) * self.joins) ** self.nesting


def shape_of(expr: str) -> CostShape:
    """The cost shape of a CEL expression, read from its text (string literals skipped)."""
    nesting = deepest = pluses = 0
    opened: list[bool] = []  # for each open parenthesis: does it hold a comprehension?
    for index, char in _code(expr):
        if char == "(":
            is_macro = _macro_before(expr, index)
            opened.append(is_macro)
            nesting += is_macro
            deepest = max(deepest, nesting)
        elif char == ")" and opened:
            nesting -= opened.pop()
        elif char == "+":
            pluses += 1
    return CostShape(deepest, 1 + pluses)


def largest_collection(*values: Any) -> int:
    """The number of items of the largest list or map anywhere in `values`."""
    largest, stack = 0, list(values)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            largest = max(largest, len(item))
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            largest = max(largest, len(item))
            stack.extend(item)
    return largest


def _macro_before(expr: str, index: int) -> bool:
    """Whether the parenthesis at `index` opens `.all(`, `.map(` and the like."""
    head = expr[:index].rstrip()
    name_start = len(head)
    while name_start and (head[name_start - 1].isalnum() or head[name_start - 1] == "_"):
        name_start -= 1
    name = head[name_start:]
    return name in MACROS and head[:name_start].rstrip().endswith(".")


def _code(expr: str) -> Iterable[tuple[int, str]]:
    """(index, character) of `expr` outside string and bytes literals."""
    index, length = 0, len(expr)
    while index < length:
        char = expr[index]
        if char in "'\"":
            quote = expr[index : index + 3] if expr[index : index + 3] in ("'''", '"""') else char
            raw = "r" in expr[max(0, index - 2) : index].lower()  # r'...', rb'...': no escapes
            index = _after_string(expr, index + len(quote), quote, raw=raw)
            continue
        yield index, char
        index += 1


def _after_string(expr: str, index: int, quote: str, *, raw: bool) -> int:
    """The index after the string literal whose body starts at `index`."""
    while index < len(expr):
        if expr[index] == "\\" and not raw:
            index += 2
        elif expr.startswith(quote, index):
            return index + len(quote)
        else:
            index += 1
    return index
