"""Bad input: each case is a mistake a user makes; mlcd must answer with one line naming the problem
and the fix, the documented exit code, and leave every node exactly as it was.

The nodes carry a released bundle (test and prod) and a newer bundle was built
(`run.json`, not deployed). Each case runs the real CLI with its own copy of the
out dir and its own mlcd.yaml, and compares the nodes' state (projects, active,
imported and exported bundles) before and after.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import canary
from support.artifact_server import free_port
from support.pipeline_env import PipelineEnv, key_env_name
from support.reltools import fast_pipeline, node_state, one_line_error, record_result


@dataclass
class Ctx:
    """What a case may change: its config mapping, environment, out dir and files."""

    pipe: PipelineEnv
    config: dict[str, Any]
    env: dict[str, str]
    out_dir: Path
    work: Path
    released: str
    built: str
    config_text: str | None = None
    holders: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def archive(self) -> Path:
        """This case's copy of the built bundle's archive."""
        return self.out_dir / "bundles" / f"{self.built}.zip"

    def env_cfg(self, name: str) -> dict[str, Any]:
        """The config mapping of environment ``name``."""
        return next(e for e in self.config["environments"] if e["name"] == name)


Prepare = Callable[[Ctx], None]


@dataclass
class Case:
    """One bad input: what to change, what to run, what must come out."""

    args: tuple[str, ...]
    prepare: Prepare
    exit_code: int
    words: tuple[str, ...]  # each must appear in the error line (case-insensitive)
    imports_allowed: bool = False  # DSS keeps an imported bundle when activation is refused
    bug: str | None = None  # a known mlcd bug: the case is a strict xfail until it is fixed


def _set(path: str, value: Any) -> Prepare:
    def prepare(c: Ctx) -> None:
        keys = path.split(".")
        target: Any = c.config
        for k in keys[:-1]:
            target = c.env_cfg(k[4:]) if k.startswith("env:") else target[k]
        target[keys[-1]] = value

    return prepare


def _drop(path: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        keys = path.split(".")
        target: Any = c.config
        for k in keys[:-1]:
            target = c.env_cfg(k[4:]) if k.startswith("env:") else target[k]
        del target[keys[-1]]

    return prepare


def _text(text: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        c.config_text = text

    return prepare


def _unset_env(var: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        c.env.pop(var, None)

    return prepare


def _wrong_key(var: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        c.env[var] = canary.new_canary()  # a wrong key, looked for by the session scan

    return prepare


def _closed_port(node: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        if node == "design":
            c.config["design"]["url"] = url
        else:
            c.env_cfg(node)["url"] = url

    return prepare


def _not_dss(node: str) -> Prepare:
    """Point ``node``'s url at a plain web server (python -m http.server: 404 pages in HTML)."""

    def prepare(c: Ctx) -> None:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(c.work)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        c.holders.append(server)
        give_up = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < give_up, "http.server did not start"
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        if node == "design":
            c.config["design"]["url"] = url
        else:
            c.env_cfg(node)["url"] = url

    return prepare


def _design_url_is_automation(c: Ctx) -> None:
    c.config["design"]["url"] = c.pipe.automation["test"].url
    c.config["design"]["api_key_env"] = key_env_name("test")


def _env_url_is_design(c: Ctx) -> None:
    c.env_cfg("test")["url"] = c.pipe.design.url
    c.env_cfg("test")["api_key_env"] = "DSS_DESIGN_API_KEY"


def _truncate_archive(c: Ctx) -> None:
    data = c.archive.read_bytes()
    c.archive.write_bytes(data[: len(data) // 2])


def _corrupt_archive(c: Ctx) -> None:
    data = bytearray(c.archive.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    c.archive.write_bytes(bytes(data))


def _other_valid_archive(c: Ctx) -> None:
    # a well-formed zip with the right bundle id but other bytes: only the sha256 can tell
    src = c.archive
    tmp = c.work / "rewritten.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item.filename))
        zout.writestr("project/extra.txt", "not what was tested")
    shutil.move(tmp, src)


def _remove(rel: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        (c.out_dir / rel.replace("<built>", c.built)).unlink()

    return prepare


def _garble(rel: str) -> Prepare:
    def prepare(c: Ctx) -> None:
        (c.out_dir / rel).write_text('{"bundleId": "X", "sha2')

    return prepare


def _out_dir_under_file(c: Ctx) -> None:
    blocker = c.work / "blocker"
    blocker.write_text("a file, not a directory")
    c.out_dir = blocker / "out"


def _hold_lock(c: Ctx) -> None:
    code = (
        "import sys\nfrom mlcd.locking import deploy_lock\n"
        f"with deploy_lock({c.pipe.project_key!r}, 'test', 5, build_url='http://ci/job/7/',"
        " command='deploy'):\n"
        "    print('held', flush=True)\n    sys.stdin.readline()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], env=c.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    c.holders.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"


def _all(*steps: Prepare) -> Prepare:
    def prepare(c: Ctx) -> None:
        for step in steps:
            step(c)

    return prepare


def _nothing(c: Ctx) -> None:
    return None


CASES: dict[str, Case] = {
    # -- mlcd.yaml --------------------------------------------------------------------------------
    "unknown-env-key": Case(
        ("deploy", "--env", "test"), _set("env:test.aproval", True), 2, ("unknown key", "aproval", "approval")
    ),
    "unknown-top-key": Case(("validate",), _set("projekt", "X"), 2, ("unknown key", "projekt")),
    "missing-project": Case(("validate",), _drop("project"), 2, ("missing", "project")),
    "missing-api-key-env": Case(
        ("deploy", "--env", "test"), _drop("env:test.api_key_env"), 2, ("missing", "api_key_env")
    ),
    "invalid-yaml": Case(("validate",), _text("project: [SAMPLE\ndesign: {url: x\n"), 2, ("yaml",)),
    "empty-config": Case(("validate",), _text(""), 2, ("mlcd.yaml",)),
    "config-not-a-mapping": Case(("validate",), _text("- just\n- a list\n"), 2, ("mlcd.yaml",)),
    "wrong-type-timeout": Case(
        ("deploy", "--env", "test"), _set("env:test.timeouts", {"scenario": "ten"}), 2, ("timeouts",)
    ),
    "negative-timeout": Case(
        ("deploy", "--env", "test"), _set("env:test.timeouts", {"lock": -5}), 2, ("timeouts",)
    ),
    "bad-warning-enum": Case(("smoke", "--env", "test"), _set("env:test.warning", "maybe"), 2, ("warning",)),
    "flaky-retries-too-many": Case(
        ("test", "--env", "test"),
        _set("env:test.flaky", {"TEST_PASS": 50}),
        2,
        ("flaky", "is 50", "an integer from 0 to 10"),
    ),
    "read-timeout-huge": Case(
        ("status", "--env", "test"),
        _set("env:test.read_timeout", 99999999999),
        2,
        ("read_timeout", "99999999999", "at most 3600"),
    ),
    "connect-timeout-inf": Case(
        ("status", "--env", "test"),
        _set("env:test.connect_timeout", math.inf),
        2,
        ("connect_timeout", ".inf", "at most 300"),
    ),
    "connect-timeout-nan": Case(
        ("deploy", "--env", "test"),
        _set("env:test.connect_timeout", math.nan),
        2,
        ("connect_timeout", ".nan", "at most 300"),
    ),
    "scenario-timeout-huge": Case(
        ("test", "--env", "test"),
        _set("env:test.timeouts", {"scenario": 1e11}),
        2,
        ("timeouts.scenario", "at most 86400"),
    ),
    "duplicate-env-names": Case(("validate",), _set("env:prod.name", "test"), 2, ("test", "twice")),
    "literal-secret-in-config": Case(
        ("validate",), _set("design.api_key_env", "Zq8vN3kP0wR7tY2uX5mA9cB4"), 2, ("secret",)
    ),
    "url-without-scheme": Case(("deploy", "--env", "test"), _set("env:test.url", "127.0.0.1:1"), 2, ("url",)),
    "unknown-environment": Case(("deploy", "--env", "staging"), _nothing, 2, ("staging",)),
    "config-file-missing": Case(("validate",), _text("<missing>"), 2, ("mlcd.yaml",)),
    "ca-bundle-missing": Case(
        ("deploy", "--env", "test"),
        _set("env:test.tls", {"ca_bundle": "/nonexistent/ca.pem"}),
        2,
        ("ca_bundle", "/nonexistent/ca.pem"),
    ),
    # -- environment variables and credentials ----------------------------------------------------
    "missing-env-key-var": Case(
        ("deploy", "--env", "test"), _unset_env(key_env_name("test")), 2, (key_env_name("test"), "set")
    ),
    "missing-design-key-var": Case(("bundle",), _unset_env("DSS_DESIGN_API_KEY"), 2, ("DSS_DESIGN_API_KEY",)),
    "wrong-env-api-key": Case(
        ("deploy", "--env", "test"), _wrong_key(key_env_name("test")), 6, ("node test", "401", "API key")
    ),
    "wrong-design-api-key": Case(
        ("bundle",), _wrong_key("DSS_DESIGN_API_KEY"), 6, ("node design", "401", "API key")
    ),
    # -- nodes ------------------------------------------------------------------------------------
    "unreachable-env-node": Case(
        ("deploy", "--env", "test"), _closed_port("test"), 6, ("node test", "connection failed")
    ),
    "unreachable-design-node": Case(
        ("bundle",), _closed_port("design"), 6, ("node design", "connection failed")
    ),
    "https-to-http-node": Case(
        ("status", "--env", "test"),
        lambda c: c.env_cfg("test").update(url=c.pipe.automation["test"].url.replace("http://", "https://")),
        6,
        ("tls",),
    ),
    # a node of the wrong role: DSS refuses the step (exit 8, documented for bundle and deploy)
    "design-url-is-automation-node": Case(
        ("bundle",), _design_url_is_automation, 8, ("design node", "design.url")
    ),
    "env-url-is-design-node": Case(
        ("deploy", "--env", "test"), _env_url_is_design, 8, ("automation node", "environment test")
    ),
    "unknown-project": Case(("bundle",), _set("project", "NOSUCHPROJECT"), 2, ("NOSUCHPROJECT",)),
    # documented: a listed scenario the node lacks is a failed gate case (exit 3)
    "unknown-smoke-scenario": Case(
        ("smoke", "--env", "test"),
        _set("env:test.smoke", ["NO_SUCH_SCENARIO"]),
        3,
        ("NO_SUCH_SCENARIO", "does not exist"),
    ),
    "unknown-test-selection": Case(
        ("test", "--env", "test"), _set("env:test.tests", {"prefix": "ZZZ_"}), 2, ("ZZZ_",)
    ),
    "existing-bundle-id": Case(("bundle", "--bundle-id", "<released>"), _nothing, 2, ("already exported",)),
    "invalid-bundle-id": Case(("bundle", "--bundle-id", "bad/id with spaces"), _nothing, 2, ("bundle id",)),
    "bundle-id-dot": Case(("bundle", "--bundle-id", "."), _nothing, 2, ("--bundle-id", "path")),
    "bundle-id-dotdot": Case(("rollback", "--env", "test", "--to", ".."), _nothing, 2, ("--to", "path")),
    "bundle-id-dash": Case(("bundle", "--bundle-id=-rf"), _nothing, 2, ("--bundle-id", "starts with '-'")),
    "bundle-id-empty": Case(("bundle", "--bundle-id", ""), _nothing, 2, ("--bundle-id", "empty")),
    # -- the command line -------------------------------------------------------------------------
    "unknown-flag": Case(("deploy", "--env", "test", "--force"), _nothing, 2, ("unknown option --force",)),
    "missing-flag": Case(("approve", "--env", "test"), _nothing, 2, ("missing --approver",)),
    "repeated-flag": Case(("deploy", "--env", "test", "--env", "prod"), _nothing, 2, ("--env given twice",)),
    "lock-timeout-negative": Case(
        ("deploy", "--env", "test", "--lock-timeout", "-5"),
        _nothing,
        2,
        ("--lock-timeout", "from 0 to 86400"),
    ),
    "lock-timeout-nan": Case(
        ("deploy", "--env", "test", "--lock-timeout", "nan"),
        _nothing,
        2,
        ("--lock-timeout", "from 0 to 86400"),
    ),
    "approver-two-lines": Case(
        ("approve", "--env", "prod", "--approver", "alice\nbob"),
        _nothing,
        2,
        ("--approver", "control character"),
    ),
    "env-url-not-dss": Case(("status", "--env", "test"), _not_dss("test"), 6, ("is not a DSS node", "test")),
    "design-url-not-dss": Case(("validate",), _not_dss("design"), 6, ("is not a DSS node", "design.url")),
    # -- archives and run records -----------------------------------------------------------------
    "truncated-archive": Case(("deploy", "--env", "test"), _truncate_archive, 2, ("sha256",)),
    "corrupted-archive": Case(("deploy", "--env", "test"), _corrupt_archive, 2, ("sha256",)),
    "sha256-mismatch": Case(("deploy", "--env", "test"), _other_valid_archive, 2, ("sha256",)),
    "archive-missing": Case(
        ("deploy", "--env", "test"), _remove("bundles/<built>.zip"), 2, ("does not exist",)
    ),
    "archive-flag-nonexistent": Case(
        ("deploy", "--env", "test", "--archive", "/nonexistent/b.zip"), _nothing, 2, ("/nonexistent/b.zip",)
    ),
    "run-record-missing": Case(("deploy", "--env", "test"), _remove("run.json"), 2, ("run.json", "bundle")),
    "run-record-corrupted": Case(("deploy", "--env", "test"), _garble("run.json"), 2, ("run.json",)),
    "missing-connection": Case(
        ("deploy", "--env", "test"),
        _set("env:test.connection_remappings", {"warehouse": "warehouse_nowhere"}),
        8,
        ("warehouse_nowhere", "unchanged"),
        imports_allowed=True,
    ),
    "approval-missing": Case(("deploy", "--env", "prod"), _set("env:prod.approval", True), 2, ("approv",)),
    "rollback-to-unknown-bundle": Case(
        ("rollback", "--env", "test", "--to", "NOT_A_BUNDLE"), _nothing, 2, ("NOT_A_BUNDLE",)
    ),
    "fetch-without-repository": Case(
        ("fetch", "--bundle-id", "<built>"), _nothing, 2, ("artifact_repository",)
    ),
    "publish-without-repository": Case(("publish",), _nothing, 2, ("artifact_repository",)),
    # -- deadlines and the file system -----------------------------------------------------------
    "lock-deadline-expired": Case(
        ("deploy", "--env", "test", "--lock-timeout", "0.5"), _hold_lock, 9, ("lock", "pid")
    ),
    "unwritable-out-dir": Case(("status", "--env", "test"), _out_dir_under_file, 2, ("out-dir",)),
}


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PipelineEnv, str, str]]:
    """A pipeline with a bundle released to test and prod, and a newer bundle built (not deployed)."""
    root = tmp_path_factory.mktemp("badinput")
    with fast_pipeline(root / "pipe") as pipe:
        proc = pipe.mlcd("run", "--build-number", "1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        first = str(pipe.run_record()["bundleId"])
        pipe.set_design_variables(model_version="2")
        proc = pipe.mlcd("bundle", "--build-number", "2")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield pipe, first, str(pipe.run_record()["bundleId"])


# run by `make test` too (the rest only under `make reliability`)
FAST_CASES = {
    "unknown-env-key",
    "invalid-yaml",
    "literal-secret-in-config",
    "missing-env-key-var",
    "wrong-env-api-key",
    "env-url-is-design-node",
    "unknown-project",
    "existing-bundle-id",
    "corrupted-archive",
    "sha256-mismatch",
    "run-record-missing",
    "approval-missing",
    "unwritable-out-dir",
    "read-timeout-huge",
    "bundle-id-dotdot",
    "unknown-flag",
    "approver-two-lines",
    "env-url-not-dss",
}


def _params() -> list[Any]:
    params = []
    for name, case in sorted(CASES.items()):
        marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
        if name not in FAST_CASES:
            marks.append(pytest.mark.reliability)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _params())
def test_bad_input_is_one_line_with_fix_and_changes_nothing(
    name: str, released: tuple[PipelineEnv, str, str], tmp_path: Path
) -> None:
    """See the module docstring; ``name`` picks the case."""
    pipe, first, built = released
    case = CASES[name]
    out_dir = tmp_path / "out"
    shutil.copytree(pipe.out_dir, out_dir)
    run_json = out_dir / "run.json"  # point the copy's run record at the copy's archive
    data = json.loads(run_json.read_text())
    data["archive"] = str(out_dir / "bundles" / f"{built}.zip")
    run_json.write_text(json.dumps(data))
    c = Ctx(pipe=pipe, config=copy.deepcopy(pipe.config), env=dict(pipe.env), out_dir=out_dir,
            work=tmp_path, released=first, built=built)  # fmt: skip
    c.env["MLCD_LOCK_DIR"] = str(tmp_path / "locks")
    config_path = tmp_path / "mlcd.yaml"
    before = node_state(pipe)
    try:
        case.prepare(c)
        if c.config_text == "<missing>":
            config_path = tmp_path / "nowhere" / "mlcd.yaml"
        elif c.config_text is not None:
            config_path.write_text(c.config_text)
        else:
            config_path.write_text(yaml.safe_dump(c.config, sort_keys=False))
        args = [a.replace("<released>", first).replace("<built>", built) for a in case.args]
        c.env.update(MLCD_CONFIG=str(config_path), MLCD_OUT_DIR=str(c.out_dir))
        proc = subprocess.run(
            [sys.executable, "-m", "mlcd", *args], cwd=tmp_path, env=c.env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        canary.capture("mlcd " + " ".join(args), proc.stdout, proc.stderr)
    finally:
        for holder in c.holders:
            holder.kill()
            holder.wait()
    after = node_state(pipe)
    passed = False
    try:
        line = one_line_error(proc.stderr)
        assert proc.returncode == case.exit_code, f"exit {proc.returncode}: {line}"
        assert line.startswith(f"mlcd {args[0]}: error: "), line
        assert "(fix:" in line, f"no fix named: {line}"
        for word in case.words:
            word = word.replace("<built>", built)
            assert word.lower() in line.lower(), f"{word!r} not named in: {line}"
        for secret in pipe.keys.values():
            assert secret not in proc.stdout + proc.stderr
        if case.imports_allowed:
            for env in pipe.automation:
                after[env]["imported"] = before[env]["imported"]
        assert after == before, "a node changed"
        passed = True
    finally:
        record_result("bad_input", case=name, passed=passed, exit=proc.returncode)


def test_the_table_has_at_least_30_cases() -> None:
    """The issue asks for at least thirty bad-input cases."""
    assert len(CASES) >= 30
