"""Checking `mlcd.yaml` against ``schema/mlcd.schema.json``: the YAML loader, key locations and messages.

Every schema violation becomes one :class:`~mlcd.errors.ConfigError` naming the file
and line, the key path, what is wrong (for numbers: the value and the allowed range,
declared once in the schema) and the fix.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlcd.errors import ConfigError
from mlcd.inputrules import range_text, schema_defs, visible


def schema() -> dict[str, Any]:
    text = resources.files("mlcd").joinpath("schema/mlcd.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def path_text(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class Located:
    """Line numbers (1-based) of every key path in the YAML document."""

    def __init__(self, root: yaml.Node | None, source: Path) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        self.source = source
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(
                        f"{self.source}:{line}: key '{path_text((*path, key))}' appears twice",
                        "remove one of the two",
                    )
                seen.add(key)
                self.lines[(*path, key)] = line
                self._walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line(self, path: Iterable[Any]) -> int | None:
        parts = tuple(path)
        while parts not in self.lines and parts:
            parts = parts[:-1]
        return self.lines.get(parts)

    def where(self, path: Iterable[Any]) -> str:
        line = self.line(path)
        return f"{self.source}:{line}" if line else str(self.source)


_KEY_HINTS = {
    "api_key_env": "give the name of an environment variable, e.g. DSS_TEST_API_KEY",
    "username_env": "give the name of an environment variable, e.g. ARTIFACTS_USER",
    "password_env": "give the name of an environment variable, e.g. ARTIFACTS_PASSWORD",
    "token_env": "give the name of an environment variable, e.g. ARTIFACTS_TOKEN",
    "url": "give an http:// or https:// URL",
    "project": "give the DSS project key (letters, digits, underscores), e.g. CHURN",
    "name": "use letters, digits, '.', '_' or '-', starting with a letter or digit",
    "tests": "use false, true, {prefix: TEST_, exclude: [...]} or {scenarios: [A, B], exclude: [...]}",
    "smoke": "give a scenario id or a list of scenario ids, e.g. [TEST_SMOKE]",
    "warning": "use 'fail' or 'pass'",
    "release_notes": "use 'git' or 'none'",
    "flaky": "map scenario ids to retry counts (0-10), e.g. {TEST_SLOW_IO: 1}",
}

_TYPE_NAMES = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "empty"
    if isinstance(value, str):
        return "text"  # never echoed: it could be a secret typed in the wrong place
    if isinstance(value, float):
        return f"the number {value:g}"
    return type(value).__name__


def _number_text(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ".nan (not a number)"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class _Problem:
    """One schema violation, with what every message needs."""

    err: jsonschema.ValidationError
    loc: Located

    @property
    def path(self) -> tuple[Any, ...]:
        return tuple(self.err.absolute_path)

    @property
    def name(self) -> str:
        return path_text(self.path)

    @property
    def at(self) -> str:
        return self.loc.where(self.path)

    @property
    def hint(self) -> str | None:
        key = next((str(p) for p in reversed(self.path) if not isinstance(p, int)), "")
        return _KEY_HINTS.get(key)

    @property
    def schema(self) -> dict[str, Any]:
        return self.err.schema if isinstance(self.err.schema, dict) else {}

    @property
    def where(self) -> str:
        return f"in '{self.name}'" if self.path else "at top level"


def _unknown_key(p: _Problem) -> ConfigError:
    allowed = sorted(p.schema.get("properties", {}))
    extra = [k for k in p.err.instance if k not in allowed] if isinstance(p.err.instance, dict) else []
    unknown = visible(str(extra[0])) if extra else "?"
    close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
    fix = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(
        f"{p.loc.where((*p.path, unknown))}: unknown key '{unknown}' {p.where}",
        f"{fix}allowed keys: {', '.join(allowed)}",
    )


def _missing_key(p: _Problem) -> ConfigError:
    instance = p.err.instance if isinstance(p.err.instance, dict) else {}
    missing = [k for k in p.schema.get("required", []) if k not in instance]
    miss = missing[0] if missing else "?"
    return ConfigError(
        f"{p.at}: missing required key '{miss}' {p.where}",
        _KEY_HINTS.get(miss, f"add '{miss}: ...' (see docs/configuration.md)"),
    )


def _wrong_type(p: _Problem) -> ConfigError:
    expected = p.schema.get("type")
    types = expected if isinstance(expected, list) else [expected]
    wanted = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in types)
    return ConfigError(
        f"{p.at}: '{p.name}' must be {wanted}, not {_type_of(p.err.instance)}",
        p.hint or f"change '{p.name}' to {wanted}",
    )


def _not_in_enum(p: _Problem) -> ConfigError:
    options = ", ".join(str(o) for o in p.schema.get("enum", []))
    return ConfigError(f"{p.at}: '{p.name}' must be one of: {options}", p.hint or f"use {options}")


def _bad_pattern(p: _Problem) -> ConfigError:
    if p.schema.get("pattern") == schema_defs()["text"]["pattern"]:
        return ConfigError(
            f"{p.at}: '{p.name}' holds a control character (newline, tab, escape...)",
            "write it on one line without control characters",
        )
    return ConfigError(
        f"{p.at}: '{p.name}' has an invalid value", p.hint or f"match {p.schema.get('pattern')}"
    )


def _out_of_range(p: _Problem) -> ConfigError:
    wanted = range_text(p.schema)
    return ConfigError(
        f"{p.at}: '{p.name}' is {_number_text(p.err.instance)}, out of range: it must be {wanted}",
        f"set '{p.name}' to {wanted}",
    )


def _empty(p: _Problem) -> ConfigError:
    return ConfigError(
        f"{p.at}: '{p.name}' must not be empty", p.hint or f"add at least one item to '{p.name}'"
    )


def _duplicate_item(p: _Problem) -> ConfigError:
    return ConfigError(f"{p.at}: '{p.name}' lists an item twice", "remove the duplicate")


def _excluded(p: _Problem) -> ConfigError:
    if p.path and p.path[-1] == "tests":
        return ConfigError(
            f"{p.at}: '{p.name}' sets both prefix and scenarios", "use one of prefix or scenarios"
        )
    return _invalid(p)


def _no_branch(p: _Problem) -> ConfigError:
    # report the most specific problem of the best-matching branch, if any
    inner = [e for e in p.err.context or [] if e.validator != "type"]
    best = jsonschema.exceptions.best_match(inner) if inner else None
    if best is not None:
        return format_error(best, p.loc)
    return ConfigError(f"{p.at}: '{p.name}' has an invalid value", p.hint or "see docs/configuration.md")


def _invalid(p: _Problem) -> ConfigError:
    return ConfigError(f"{p.at}: '{p.name}' is invalid", p.hint or "see docs/configuration.md")


_BY_VALIDATOR = {
    "additionalProperties": _unknown_key,
    "required": _missing_key,
    "type": _wrong_type,
    "enum": _not_in_enum,
    "pattern": _bad_pattern,
    "minimum": _out_of_range,
    "maximum": _out_of_range,
    "exclusiveMinimum": _out_of_range,
    "exclusiveMaximum": _out_of_range,
    "minItems": _empty,
    "uniqueItems": _duplicate_item,
    "not": _excluded,
    "oneOf": _no_branch,
    "anyOf": _no_branch,
}


def format_error(err: jsonschema.ValidationError, loc: Located) -> ConfigError:
    """One :class:`ConfigError` for a schema violation: file and line, key path, what, and the fix."""
    return _BY_VALIDATOR.get(str(err.validator), _invalid)(_Problem(err, loc))


def _maximum_refusing_nan(
    validator: Any, maximum: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """``maximum``, also failing NaN (which compares false with every bound)."""
    if isinstance(instance, float) and math.isnan(instance):
        yield jsonschema.ValidationError(f"{instance!r} is not a number")
        return
    yield from _BASE_MAXIMUM(validator, maximum, instance, schema)


_BASE_MAXIMUM = jsonschema.Draft202012Validator.VALIDATORS["maximum"]
_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"maximum": _maximum_refusing_nan}
)


class Loader(yaml.SafeLoader):
    """YAML 1.1 SafeLoader that also reads ``1e15`` (an exponent without a '.') as a number."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def schema_errors(data: Any) -> Iterator[jsonschema.ValidationError]:
    validator = _Validator(schema())
    yield from sorted(validator.iter_errors(data), key=lambda e: (len(list(e.absolute_path)), str(e.path)))
