"""Command-line usage errors as one line: ``mlcd <command>: error: <what> (fix: <how>)``, exit 2.

:class:`UsageParser` is an :class:`argparse.ArgumentParser` whose errors name the
command (also for unknown arguments, which argparse reports from the top-level
parser), say how to fix them, and never print the usage block. An option that
takes a value may be given once (``--env a --env b`` is refused, not "last wins").
The ``*_arg`` functions are argument types checking values against the rules of
:mod:`mlcd.inputrules` (the configuration schema), so a bad value fails before
anything runs.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mlcd.inputrules import BUNDLE_ID_RULE, bundle_id_problem, has_control, number_problem, visible

_SEEN = "_mlcd_options_seen"
_FIX = re.compile(r"^(?P<what>.*) \(fix: (?P<fix>.*)\)$", re.S)
_ARGUMENT = re.compile(r"^argument (?P<arg>[^:]+): (?P<rest>.*)$", re.S)


class _StoreOnce(argparse._StoreAction):
    """``store``, refusing a second occurrence of the same option."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        seen: set[str] = getattr(namespace, _SEEN, None) or set()
        if self.option_strings and self.dest in seen:
            raise argparse.ArgumentError(self, "given twice (fix: give it once)")
        seen.add(self.dest)
        setattr(namespace, _SEEN, seen)
        super().__call__(parser, namespace, values, option_string)


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose every error is one line with a fix, exit 2 (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Parse ``args``; an unknown argument is reported by the command it was given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        if hasattr(parsed, _SEEN):
            delattr(parsed, _SEEN)
        if extras:
            self._command_parser(parsed).error("unrecognized arguments: " + " ".join(extras))
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(parsed, action.dest or "", None)
                parser = action.choices.get(chosen) if chosen else None
                if isinstance(parser, argparse.ArgumentParser):
                    return parser
        return self

    def error(self, message: str) -> NoReturn:
        """Print one line ``<prog>: error: <what> (fix: <how>)`` to stderr and exit 2."""
        what, fix = explain(message, self)
        line = visible(f"{self.prog}: error: {what} (fix: {fix})")
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        raise SystemExit(2)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _help(parser: argparse.ArgumentParser) -> str:
    return f"`{parser.prog} --help` lists the options"


def _unknown(extras: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    first = extras.split(" ")[0]
    if not first.startswith("-"):
        return f"unexpected argument '{first}'", f"remove it, or put it after its option; {_help(parser)}"
    name = first.split("=", 1)[0]
    close = difflib.get_close_matches(name, _options(parser), n=1, cutoff=0.75)
    if close:
        return f"unknown option {name}", f"did you mean {close[0]}? {_help(parser)}"
    return f"unknown option {name}", f"remove it; {_help(parser)}"


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [c for c in action.choices if c != "sim"]
    return []


def _argument(arg: str, rest: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    if rest.startswith("invalid choice:") and arg == "COMMAND":
        given = rest.split("'")[1] if "'" in rest else rest
        commands = _commands(parser)
        close = difflib.get_close_matches(given, commands, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown command '{given}'", f"{hint}use one of: {', '.join(commands)}"
    if rest.startswith("expected one argument"):
        return f"{arg} needs a value", f"give it as {arg} VALUE"
    if rest.startswith("ignored explicit argument"):
        return f"{arg} takes no value", f"write {arg} alone"
    found = _FIX.match(rest)
    if found:
        return f"{arg} {found['what']}", found["fix"]
    return f"{arg}: {rest}", _help(parser)


def explain(message: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    """``(what, fix)`` for one of argparse's error messages."""
    if message.startswith("the following arguments are required:"):
        missing = message.split(":", 1)[1].strip()
        first = missing.split(",")[0].strip()
        return f"missing {missing}", f"add {first} VALUE; {_help(parser)}"
    if message.startswith("unrecognized arguments:"):
        return _unknown(message.split(":", 1)[1].strip(), parser)
    if message.startswith("ambiguous option:"):
        return message.replace("ambiguous option:", "ambiguous option", 1), "spell the option out in full"
    found = _ARGUMENT.match(message)
    if found:
        return _argument(found["arg"], found["rest"], parser)
    found = _FIX.match(message)
    if found:
        return found["what"], found["fix"]
    return message, _help(parser)


# -- argument types: a bad value is a one-line usage error ------------------------------------------
def _refuse(what: str, fix: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"{what} (fix: {fix})")


def text_arg(value: str) -> str:
    """Free text that goes into records (names, comments, reasons, URLs, paths): no control characters."""
    if has_control(value):
        _refuse(
            f"holds a control character: '{visible(value)}'",
            "give it on one line without tabs, newlines or escape characters",
        )
    return value


def bundle_id_arg(value: str) -> str:
    """A bundle id (the rule of the schema's ``$defs.bundle_id``)."""
    problem = bundle_id_problem(value)
    if problem:
        _refuse(f"is not a valid bundle id: {problem}", BUNDLE_ID_RULE)
    return value


def env_name_arg(value: str) -> str:
    """An environment name (the pattern of the schema's ``$defs.env_name``); existence is checked later."""
    from mlcd.inputrules import pattern_matches

    if not pattern_matches(value, "env_name"):
        _refuse(
            f"'{visible(value)}' is not an environment name",
            "use a name from mlcd.yaml's environments (letters, digits, '.', '_', '-')",
        )
    return value


def env_list_arg(value: str) -> str:
    """A comma-separated list of environment names."""
    for name in value.split(","):
        if name.strip():
            env_name_arg(name.strip())
    return text_arg(value)


def seconds_arg(def_name: str) -> Callable[[str], float]:
    """An argument type for a number of seconds in the range of the schema's ``$defs.<def_name>``."""

    def convert(value: str) -> float:
        problem = number_problem(value, def_name)
        if problem:
            _refuse(problem, "give " + problem.split(",")[0].replace("must be ", "", 1))
        return float(value)

    convert.__name__ = "seconds"
    return convert


def saved_model_arg(value: str) -> str:
    """A saved model id (the pattern of the schema's ``$defs.scenario_id``)."""
    from mlcd.inputrules import pattern_matches

    if not pattern_matches(value, "scenario_id"):
        _refuse(
            f"'{visible(value)}' is not a saved model id",
            "use an id from continuous_training.models of mlcd.yaml (letters, digits, '.', '_', '-')",
        )
    return value
