"""The `[[claims]]` of a suite: their schema, and the checks a schema cannot state (fields, runner names).

A claim is data: what the source says (`text`), where and with what figure (`source`), and how our
figures test it (`check`, one of harness/predicates.py's, with the fields that check reads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.errors import UserError

# the fields each check reads: a claim that lacks one is refused when the suite is loaded
NEEDS: dict[str, tuple[str, ...]] = {
    "faster": ("a", "b"), "slower": ("a", "b"), "same": ("a", "b"), "fastest": ("a", "among"),
    "ratio_at_least": ("a", "b", "k"), "metric_lower": ("a", "b", "metric"),
    "metric_at_least": ("a", "metric", "value"), "outputs_differ": ("wrong",), "tail": ("a", "b"),
    "fused": ("of",), "all": ("parts",), "batch_floor": ("k",), "columns_cheaper": (), "threads": ("expect",),
    "at_most_over": ("a", "b", "us"), "refused": ("of", "reason"),
}
CHECK_NAMES = tuple(NEEDS)  # harness/predicates.py implements each, in this order
METRICS = ("load_ms", "first_call_us")

_NAME = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"}
_NAMES = {"type": "array", "minItems": 1, "maxItems": 32, "items": _NAME}
_FILTER = {"type": "object", "additionalProperties": False, "minProperties": 1,
           "properties": {"language": {"enum": ["Python", "Java", "C++"]}, "uses_torch": {"type": "boolean"}}}
_SET = {"oneOf": [_NAMES, _FILTER]}
_SELECTOR = {"oneOf": [_NAME, _NAMES, {"type": "object", "additionalProperties": False, "required": ["best_of"],
                                       "properties": {"best_of": _SET}}]}
_FIELDS: dict[str, Any] = {
    "check": {"enum": list(CHECK_NAMES)},
    "a": _SELECTOR, "b": _SELECTOR, "among": _SET, "wrong": _NAMES, "right": _NAMES, "of": _NAMES,
    "k": {"type": "number", "exclusiveMinimum": 0}, "mixed_k": {"type": "number", "exclusiveMinimum": 0},
    "metric": {"enum": list(METRICS)}, "value": {"type": "number"},
    "expect": {"enum": ["faster", "no faster"]}, "batch": {"type": "integer", "minimum": 1},
    "us": {"type": "number", "minimum": 0}, "reason": {"type": "string", "minLength": 1, "maxLength": 200},
}
PART_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": ["check"],
                               "properties": _FIELDS}
SCHEMA: dict[str, Any] = {
    "type": "array", "maxItems": 64,
    "items": {"type": "object", "additionalProperties": False, "required": ["text", "source", "check"],
              "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 300},
                             "source": {"type": "string", "minLength": 1, "maxLength": 300},
                             **_FIELDS, "parts": {"type": "array", "minItems": 1, "maxItems": 8,
                                                  "items": PART_SCHEMA}}},
}


def _named(claim: Mapping[str, Any]) -> Iterable[str]:
    """Every runner name a claim mentions."""
    for key in ("a", "b", "among", "wrong", "right", "of"):
        value = claim.get(key)
        if isinstance(value, dict) and "best_of" in value:
            value = value["best_of"]
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from value


ONE_EACH = frozenset({"metric_lower", "ratio_at_least"})  # checks of one row against one (harness/predicates.py)


def check(claims: list[dict[str, Any]], names: set[str], bad: Callable[[str, str, str], UserError]) -> None:
    """Each claim (and part) has the fields its check reads, and names only runners: rows of the suite or
    registry ids (a registered runner left out of the suite makes its claims "not testable here")."""
    for k, claim in enumerate(claims):
        for where, c in [(f"claims[{k}]", claim)] + [(f"claims[{k}].parts[{j}]", p)
                                                      for j, p in enumerate(claim.get("parts", []))]:
            missing = [f for f in NEEDS[c["check"]] if f not in c]
            if missing:
                raise bad(where, f"check '{c['check']}' needs {', '.join(missing)}",
                          "add it (harness/predicates.py says what each check reads)")
            for side in ("a", "b"):
                if c["check"] in ONE_EACH and isinstance(c.get(side), list):
                    raise bad(where, f"check '{c['check']}' compares one row with one ({side} is a list)",
                              "name one runner, or write one claim per pair")
            for name in _named(c):
                if name not in names:
                    raise bad(where, f"'{name}' is neither a runner of this suite nor a registered runner",
                              "name a runner as the suite names it (its `name`, else its `id`)")
