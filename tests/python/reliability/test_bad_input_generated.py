"""Generated bad input (Hypothesis): mlcd.yaml documents, numbers at and past every range boundary,
ids and names with every character class, command lines with unknown, missing and repeated flags.

The contract for each generated case: exit 2, exactly one stderr line
``mlcd <command>: error: <what> (fix: <how>)``, no traceback, nothing on the nodes
changed. Commands run in-process (``mlcd.cli.main``) against stand-in nodes that
carry a released bundle, so a case that slipped through would act on real sockets.

`make test` runs a few examples per property; `make reliability` sets
``MLCD_BAD_INPUT_EXAMPLES`` (scripts/reliability.py) and records every case in the
results table. Seeds vary per run; a failure prints the ``@reproduce_failure`` to replay.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlcd.cli import main
from mlcd.config import load_config
from mlcd.errors import ConfigError
from mlcd.inputrules import NUMBER_DEFS, bundle_id_problem, has_control, in_range, schema_defs
from support.pipeline_env import PipelineEnv
from support.reltools import fast_pipeline, node_state, record_result

EXAMPLES = int(os.environ.get("MLCD_BAD_INPUT_EXAMPLES", "6"))
GENERATED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

COMMANDS = ("validate", "status", "plan", "deploy", "test", "smoke", "rollback")
WITH_ENV = {"status", "plan", "deploy", "test", "smoke", "rollback", "approve"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PipelineEnv, Path]]:
    """Nodes with a released bundle (test, prod), its mlcd.yaml, and the keys in os.environ."""
    root = tmp_path_factory.mktemp("generated")
    with fast_pipeline(root / "pipe") as pipe:
        proc = pipe.mlcd("run", "--build-number", "1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        saved, cwd = dict(os.environ), os.getcwd()
        os.chdir(root)  # relative paths a generated command line names land in the temporary dir
        os.environ.update({k: v for k, v in pipe.env.items() if k.startswith(("DSS_", "MLCD_"))})
        os.environ["MLCD_OUT_DIR"] = str(root / "out")
        try:
            yield pipe, root
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)


def _run(argv: list[str]) -> tuple[int, str]:
    """``mlcd ARGV`` in-process; (exit code, stderr)."""
    err, out = io.StringIO(), io.StringIO()
    sigterm = signal.getsignal(signal.SIGTERM)
    handlers = logging.getLogger().handlers[:]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = int(exc.code) if isinstance(exc.code, int) else 2
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        logging.getLogger().handlers[:] = handlers
    return code, err.getvalue()


World = tuple[PipelineEnv, Path]


def _check(kind: str, world: World, argv: list[str], *, words: tuple[str, ...] = ()) -> None:
    """Run ``argv`` and assert the bad-input contract (see the module docstring); record the case."""
    pipe, _ = world
    before = node_state(pipe)
    code, err = _run(argv)
    after = node_state(pipe)
    passed = False
    try:
        lines = err.splitlines()
        assert "Traceback" not in err, err
        assert len(lines) == 1, f"expected one stderr line, got {err!r}"
        assert code == 2, f"exit {code}: {lines[0]}"
        command = next((a for a in argv if not a.startswith("-")), "")
        assert lines[0].startswith(f"mlcd {command}: error: "), lines[0]
        assert " (fix: " in lines[0] and lines[0].endswith(")"), lines[0]
        for word in words:
            assert word in lines[0], f"{word!r} not in {lines[0]!r}"
        assert after == before, "a node changed"
        passed = True
    finally:
        record_result("bad_input_generated", kind=kind, passed=passed, exit=code)


def _env_args(command: str) -> list[str]:
    return ["--env", "test"] if command in WITH_ENV else []


# -- mlcd.yaml documents ---------------------------------------------------------------------------
NUMBER_KEYS = [  # (path in the config, schema def)
    (("design", "connect_timeout"), "connect_timeout"),
    (("design", "read_timeout"), "read_timeout"),
    (("environments", 0, "connect_timeout"), "connect_timeout"),
    (("environments", 0, "read_timeout"), "read_timeout"),
    (("environments", 0, "timeouts", "scenario"), "scenario_timeout"),
    (("environments", 0, "timeouts", "deploy"), "deploy_timeout"),
    (("environments", 1, "timeouts", "lock"), "lock_timeout"),
    (("environments", 0, "flaky", "TEST_PASS"), "flaky_retries"),
]


def _bounds(def_name: str) -> tuple[float, float, bool]:
    spec = schema_defs()[def_name]
    low = spec.get("exclusiveMinimum", spec.get("minimum"))
    return float(low), float(spec["maximum"]), "exclusiveMinimum" in spec


@st.composite
def past_boundary(draw: st.DrawFn, def_name: str) -> Any:
    """A value outside the range of ``def_name``: just past a bound, far past, NaN, infinities, wrong type."""
    low, high, exclusive = _bounds(def_name)
    integer = schema_defs()[def_name]["type"] == "integer"
    options = [
        st.sampled_from([math.nan, math.inf, -math.inf, 99999999999, 1e15, -1, high + 1, True, "10", [1]]),
        st.floats(min_value=high, exclude_min=True, allow_nan=False),
        st.integers(min_value=int(high) + 1),
        st.floats(max_value=low, exclude_max=not exclusive, allow_nan=False),
        st.integers(max_value=int(low) - (0 if exclusive else 1)),
    ]
    if integer:
        options.append(st.floats(min_value=low, max_value=high).filter(lambda v: v != int(v)))
    value = draw(st.one_of(options))
    if not isinstance(value, (bool, str, list)):
        assume(not in_range(float(value), schema_defs()[def_name]))
    return value


def _set(config: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = config
    for part in path[:-1]:
        target = target.setdefault(part, {}) if isinstance(target, dict) else target[part]
    target[path[-1]] = value


REQUIRED_KEYS = [("project",), ("design",), ("environments",), ("design", "url"),
                 ("environments", 0, "api_key_env"), ("environments", 1, "name")]  # fmt: skip
TEXT_KEYS = [
    ("environments", 0, "tests", "prefix"),
    ("bundle", "id_format"),
    ("environments", 0, "connection_remappings", "warehouse"),
    ("environments", 1, "tls", "ca_bundle"),
    ("environments", 0, "name"),
    ("project",),
    ("environments", 0, "smoke"),
]
CONTROL = st.characters(max_codepoint=0x1F) | st.sampled_from(["\x7f", "\x85", "\u2028", "\u2029"])


@st.composite
def bad_document(draw: st.DrawFn, pipe: PipelineEnv) -> tuple[str, str]:
    """(what was changed, mlcd.yaml text) with exactly one thing wrong."""
    config = copy.deepcopy(pipe.config)
    config["environments"][0].pop("tests", None)
    kind = draw(st.sampled_from(["number", "text", "unknown-key", "missing-key", "wrong-type"]))
    if kind == "number":
        path, def_name = draw(st.sampled_from(NUMBER_KEYS))
        _set(config, path, draw(past_boundary(def_name)))
    elif kind == "text":
        path = draw(st.sampled_from(TEXT_KEYS))
        text = draw(st.text(min_size=0, max_size=8)) + draw(CONTROL) + draw(st.text(max_size=8))
        _set(config, path, text)
    elif kind == "unknown-key":
        where = draw(st.sampled_from([(), ("design",), ("environments", 0), ("environments", 1, "timeouts")]))
        key = draw(st.from_regex(r"\A[a-z][a-z_]{0,15}\Z"))
        target: Any = config
        for part in where:
            target = target[part] if not isinstance(target, dict) else target.setdefault(part, {})
        assume(key not in target and key not in _allowed(where))
        target[key] = draw(st.integers(0, 5) | st.text(alphabet="abc", max_size=4))
    elif kind == "missing-key":
        path = draw(st.sampled_from(REQUIRED_KEYS))
        target = config
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    else:
        path = draw(st.sampled_from([("environments", 0, "approval"), ("environments", 0, "warning"),
                                     ("environments",), ("design", "tls", "verify"),
                                     ("environments", 0, "rollback_on_failure")]))  # fmt: skip
        _set(config, path, draw(st.sampled_from([[1, 2], {"a": 1}, 3.5, "maybe"])))
    return kind, yaml.safe_dump(config, sort_keys=False, allow_unicode=False)


def _allowed(where: tuple[Any, ...]) -> set[str]:
    defs = schema_defs()
    if where == ():
        return {"project", "design", "bundle", "artifact_repository", "environments"}
    if where == ("design",):
        return set(defs["node"]["properties"])
    if where[-1] == "timeouts":
        return set(defs["environment"]["properties"]["timeouts"]["properties"])
    return set(defs["environment"]["properties"])


@GENERATED
@given(data=st.data())
def test_generated_bad_mlcd_yaml(world: World, data: st.DataObject) -> None:
    """Every generated broken document is refused at load, by every command, with one line and a fix."""
    pipe, root = world
    kind, text = data.draw(bad_document(pipe), label="document")
    command = data.draw(st.sampled_from(COMMANDS), label="command")
    path = root / "generated.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)
    _check(f"yaml-{kind}", world, [command, *_env_args(command), "--config", str(path)])


@GENERATED
@given(data=st.data())
def test_numbers_at_every_boundary_load(world: World, data: st.DataObject) -> None:
    """The bounds themselves, and numbers between them, are accepted."""
    pipe, root = world
    path, def_name = data.draw(st.sampled_from(NUMBER_KEYS), label="key")
    low, high, exclusive = _bounds(def_name)
    integer = schema_defs()[def_name]["type"] == "integer"
    if integer:
        value: float = data.draw(st.sampled_from([int(low), int(high)]) | st.integers(int(low), int(high)))
    else:
        value = data.draw(st.sampled_from([high, low + 0.001 if exclusive else low])
                          | st.floats(low, high, exclude_min=exclusive))  # fmt: skip
    config = copy.deepcopy(pipe.config)
    _set(config, path, value)
    target = root / "boundary.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    load_config(target)
    record_result("bad_input_generated", kind="number-in-range", passed=True, exit=0)


# -- ids and names with every character class ---------------------------------------------------------
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=24)


@GENERATED
@given(value=ANY_TEXT | st.sampled_from([".", "..", "-rf", "--", "-", ".x", "a/b", "a b", "x" * 201, ""]))
def test_generated_bundle_ids(world: World, value: str) -> None:
    """`rollback --to ID` with an invalid id: refused by the argument parser, naming --to."""
    assume(bundle_id_problem(value) is not None)
    _check("bundle-id", world, ["rollback", "--env", "test", "--to", value], words=("--to",))


@GENERATED
@given(value=ANY_TEXT)
def test_generated_environment_names(world: World, value: str) -> None:
    """`status --env NAME` with any name that is not one of mlcd.yaml's: one line, exit 2."""
    assume(value not in ("test", "prod"))
    _check("env-name", world, ["status", "--env", value])


@GENERATED
@given(value=ANY_TEXT, control=CONTROL, option=st.sampled_from(["--approver", "--comment"]))
def test_generated_control_characters_in_recorded_text(
    world: World, value: str, control: str, option: str
) -> None:
    """Text with a control character never reaches a record."""
    text = value[: len(value) // 2] + control + value[len(value) // 2 :]
    assert has_control(text)
    argv = ["approve", "--env", "test", "--approver", "alice", "--comment", "ok"]
    argv[argv.index(option) + 1] = text
    _check("control-text", world, argv, words=(option,))


# -- command lines ---------------------------------------------------------------------------------------
REQUIRED = {  # command -> its required options with a valid value
    "deploy": [("--env", "test")], "plan": [("--env", "test")], "status": [("--env", "test")],
    "test": [("--env", "test")], "smoke": [("--env", "test")], "rollback": [("--env", "test")],
    "approve": [("--env", "test"), ("--approver", "alice")], "fetch": [("--bundle-id", "B1")],
    "validate": [], "bundle": [], "publish": [], "run": [],
}  # fmt: skip
VALUE_OPTIONS = ["--config", "--out-dir"]


def _options_of(command: str) -> list[str]:
    from mlcd.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return [o for a in sub.choices[command]._actions for o in a.option_strings]  # type: ignore[attr-defined]


@st.composite
def bad_command_line(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(what is wrong, argv) for a command line that cannot be valid."""
    command = draw(st.sampled_from(sorted(REQUIRED)))
    args = [x for pair in REQUIRED[command] for x in pair]
    kind = draw(st.sampled_from(["unknown", "missing", "repeated", "no-value", "stray"]))
    if kind == "missing":
        assume(REQUIRED[command])
        drop = draw(st.sampled_from(REQUIRED[command]))
        args = [x for pair in REQUIRED[command] if pair != drop for x in pair]
    elif kind == "unknown":
        flag = draw(st.from_regex(r"\A--[a-z][a-z-]{0,14}\Z"))
        assume(not any(o.startswith(flag) for o in _options_of(command)))
        position = draw(st.integers(0, len(args)))
        args = [*args[:position], flag, *args[position:]] if position % 2 == 0 else [*args, flag]
    elif kind == "repeated":
        option, value = draw(st.sampled_from([*REQUIRED[command], ("--config", "x.yml"), ("--out-dir", "o")]))
        args = [*args, option, value, option, value]
    elif kind == "no-value":
        args = [*args, draw(st.sampled_from(VALUE_OPTIONS + [p[0] for p in REQUIRED[command]]))]
    else:
        args = [*args, draw(st.from_regex(r"\A[a-z0-9][a-z0-9._]{0,10}\Z"))]
    return kind, [command, *args]


@GENERATED
@given(case=bad_command_line())
def test_generated_command_lines(world: World, case: tuple[str, list[str]]) -> None:
    """Unknown, missing, repeated, valueless and stray arguments: one line naming the command, exit 2."""
    kind, argv = case
    _check(f"argv-{kind}", world, argv)


@pytest.mark.reliability
def test_numbers_in_schema_all_have_a_range() -> None:
    """Every number a user can give has both bounds in the schema (so every error can name them)."""
    for def_name in NUMBER_DEFS.values():
        spec = schema_defs()[def_name]
        assert "maximum" in spec and ("minimum" in spec or "exclusiveMinimum" in spec), def_name
