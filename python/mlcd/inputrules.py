"""Input rules declared once, in ``schema/mlcd.schema.json``, and shared by `mlcd.yaml` and the CLI.

Numeric ranges (timeouts, retries), the bundle id and environment name patterns
and the "no control characters" rule for text that goes into records live in the
schema's ``$defs``; this module reads them (with only the standard library, so the
command line stays fast) and checks single values against them, for the argument
parser and for stages.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from typing import Any

# schema $defs of the numbers a user can give (mlcd.yaml key -> def), in docs order
NUMBER_DEFS = {
    "connect_timeout": "connect_timeout",
    "read_timeout": "read_timeout",
    "timeouts.scenario": "scenario_timeout",
    "timeouts.deploy": "deploy_timeout",
    "timeouts.lock": "lock_timeout",
    "flaky.<scenario>": "flaky_retries",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@cache
def schema_defs() -> dict[str, Any]:
    """The ``$defs`` of the configuration schema."""
    text = resources.files("mlcd").joinpath("schema/mlcd.schema.json").read_text(encoding="utf-8")
    defs: dict[str, Any] = json.loads(text)["$defs"]
    return defs


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_text(spec: dict[str, Any]) -> str:
    """The range of a numeric schema: 'from 0 to 10', 'greater than 0 and at most 300'."""
    kind = "an integer" if spec.get("type") == "integer" else "a number"
    top = spec.get("maximum")
    if "exclusiveMinimum" in spec:
        low = f"greater than {_fmt(spec['exclusiveMinimum'])}"
        return f"{kind} {low} and at most {_fmt(top)}" if top is not None else f"{kind} {low}"
    if "minimum" in spec:
        if top is not None:
            return f"{kind} from {_fmt(spec['minimum'])} to {_fmt(top)}"
        return f"{kind} of at least {_fmt(spec['minimum'])}"
    return f"{kind} of at most {_fmt(top)}" if top is not None else kind


def in_range(value: float, spec: dict[str, Any]) -> bool:
    """Whether ``value`` is a finite number inside the schema's range (NaN and infinities never are)."""
    if isinstance(value, bool) or not math.isfinite(value):
        return False
    if spec.get("type") == "integer" and value != int(value):
        return False
    if "exclusiveMinimum" in spec and value <= spec["exclusiveMinimum"]:
        return False
    if "minimum" in spec and value < spec["minimum"]:
        return False
    return not ("maximum" in spec and value > spec["maximum"])


def number_problem(text: str, def_name: str) -> str | None:
    """Why ``text`` (a command-line value) is not a valid number for ``$defs.<def_name>``, or None."""
    spec = schema_defs()[def_name]
    try:
        value = float(text)
    except ValueError:
        return f"must be {range_text(spec)}, not {visible(text)!r}"
    if not in_range(value, spec):
        return f"must be {range_text(spec)}, got {visible(text)}"
    return None


def pattern_matches(value: str, def_name: str) -> bool:
    """Whether ``value`` matches the pattern (and length limit) of ``$defs.<def_name>``."""
    spec = schema_defs()[def_name]
    if len(value) > int(spec.get("maxLength", len(value))):
        return False
    return re.fullmatch(str(spec["pattern"]), value) is not None


def bundle_id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid bundle id, or None (the rule of ``$defs.bundle_id``)."""
    if value == "":
        return "is empty"
    if pattern_matches(value, "bundle_id"):
        return None
    if value in (".", ".."):
        return f"'{value}' is a path, not an id"
    if value[0] in ".-":
        return f"'{visible(value)}' starts with '{value[0]}'"
    return f"'{visible(value)}' is not allowed" if len(value) <= 200 else "is longer than 200 characters"


BUNDLE_ID_RULE = "use 1-200 letters, digits, '_', '.' or '-', starting with a letter, digit or '_'"


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (newline, tab, escape, NUL, a Unicode line break)."""
    return _CONTROL.search(value) is not None


def visible(value: str) -> str:
    """``value`` with control characters shown as escapes, so that it prints on one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)
