"""Secrets: recognisable canary API keys run through every command, failures included.

Every node gets a key ``SECRET-mlcd-canary-<random>`` (``support/canary.py``) (the artifact repository a
canary password). Each command runs, with ``--debug`` on failures so tracebacks
and HTTP details are printed too, while a sampler reads the command line of every
process on the machine (psutil). Then every byte mlcd printed and every file it
wrote (out dir, reports, audit, run record, config, the artifact repository's
store; the nodes' own data dirs excluded) is scanned for every form of the canaries
(full, any 8-character window, URL-encoded, base64 of the key and of its HTTP Basic
forms): zero occurrences, and no key in any process's argv. The scanner itself is
shown to find each planted form (``test_scanner_finds_every_planted_form``).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from support import canary as canaries
from support.artifact_server import ArtifactServer, free_port, nginx_available
from support.pipeline_env import DESIGN_KEY_ENV, PipelineEnv, key_env_name
from support.reltools import RESULTS_ENV, fast_pipeline, record_result

CANARY = canaries.PREFIX
REPO = Path(__file__).resolve().parents[3]
GROOVY_TESTS = REPO / "tests" / "groovy"


def canary() -> str:
    """A fresh canary key."""
    return canaries.new_canary()


class ArgvSampler:
    """Samples the command line of every process while running; remembers mlcd processes and leaks."""

    def __init__(self, needles: list[str]) -> None:
        self.needles = needles
        self.seen: set[int] = set()
        self.leaks: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmdline = " ".join(proc.info.get("cmdline") or [])
                if "mlcd" not in cmdline:
                    continue
                self.seen.add(int(proc.info["pid"]))
                if any(n in cmdline for n in self.needles) or CANARY in cmdline:
                    self.leaks.append(f"pid {proc.info['pid']}: a key in its argv ({cmdline[:30]}…)")
            self._stop.wait(0.02)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def canary_pipe(tmp_path: Path) -> Iterator[tuple[PipelineEnv, str]]:
    """A fast pipeline whose nodes were restarted with canary keys; the artifact password is one too."""
    with fast_pipeline(tmp_path / "pipe") as pipe:
        nodes = [(DESIGN_KEY_ENV, pipe.design), *((key_env_name(e), n) for e, n in pipe.automation.items())]
        for var, node in nodes:
            key = canary()
            node.api_key = key
            node.restart()
            pipe.keys[var] = key
            pipe.env[var] = key
        yield pipe, canary()


@pytest.mark.reliability
def test_canary_keys_never_leak_from_any_command(
    canary_pipe: tuple[PipelineEnv, str], tmp_path: Path
) -> None:
    """Every command, success and failure, with and without --debug: no canary anywhere."""
    canary_scan(canary_pipe, tmp_path, full=True)


def test_canary_keys_never_leak_fast_subset(canary_pipe: tuple[PipelineEnv, str], tmp_path: Path) -> None:
    """`mlcd run`, a refused key and a literal key in mlcd.yaml, with --debug: no canary anywhere."""
    canary_scan(canary_pipe, tmp_path, full=False)


def canary_scan(canary_pipe: tuple[PipelineEnv, str], tmp_path: Path, *, full: bool) -> None:
    """Run the commands (all of them when ``full``) while sampling argv, then scan outputs and files."""
    pipe, password = canary_pipe
    repo: ArtifactServer | None = None
    if full and nginx_available():
        repo = ArtifactServer.start(tmp_path / "repo", username="ci", password=password)
        pipe.config["artifact_repository"] = {
            "url": repo.url, "username_env": "ARTIFACTS_USER", "password_env": "ARTIFACTS_PASSWORD",
        }  # fmt: skip
        pipe.env.update(ARTIFACTS_USER="ci", ARTIFACTS_PASSWORD=password)
    pipe.env_config("prod")["approval"] = True
    pipe.write_config()
    wrong = canary()
    leaked = [*pipe.keys.values(), password, wrong]
    needles = leaked  # full keys in argv; every form in outputs and files (canaries.needles)
    outputs: list[str] = []
    codes: dict[str, int] = {}

    def run(label: str, *args: str, env: dict[str, str] | None = None) -> None:
        started = time.monotonic()
        proc = pipe.mlcd(*args, extra_env=env, timeout=300)
        print(f"{label}: exit {proc.returncode} in {time.monotonic() - started:.1f}s")
        outputs.extend([proc.stdout, proc.stderr])
        codes[label] = proc.returncode

    try:
        with ArgvSampler(needles) as sampler:
            run("run", "run", "--build-number", "1", "--approve", "prod", "--approver", "ann")
            if full:
                full_command_set(pipe, run, wrong, repo is not None)
            run("wrong-key", "deploy", "--env", "test", "--debug", env={key_env_name("test"): wrong})
            pipe.config["environments"][1]["api_key_env"] = wrong  # a literal key where a name belongs
            pipe.write_config()
            run("literal-key-in-config", "validate", "--debug")
    finally:
        if repo is not None:
            repo.stop()
    # the failures did fail, the successes succeeded (so both paths were exercised)
    assert codes["run"] == 0 and codes["wrong-key"] == 6 and codes["literal-key-in-config"] == 2
    if full:
        assert codes["wrong-design-key"] == 6 and codes["smoke-fails"] == 4 and codes["unreachable"] == 6
    # every file mlcd wrote (mlcd.yaml is the test's own input: it holds the literal key on purpose)
    scanned = canaries.output_files([pipe.root])
    if repo is not None:
        scanned += canaries.output_files([repo.store_dir])
    report = canaries.scan_texts(((f"output #{i}", t) for i, t in enumerate(outputs)), leaked, ["ci"])
    report = canaries.scan_texts(((str(p), p.read_bytes()) for p in scanned), leaked, ["ci"], report)
    found = list(report.hits)
    found += sampler.leaks
    record_result("secrets", files=len(scanned), outputs=len(outputs), processes=len(sampler.seen),
                  leaks=len(found), needles=report.needles, bytes=report.bytes)  # fmt: skip
    assert len(scanned) > 10 and len(sampler.seen) > 3
    assert not found, f"canary key found in: {found}"


def full_command_set(pipe: PipelineEnv, run: Callable[..., None], wrong: str, with_repo: bool) -> None:
    """Every other command, successes and failures, most with --debug."""
    run("status", "status", "--env", "prod")
    run("plan", "plan", "--env", "test")
    pipe.set_design_variables(fail_smoke=True, model_version="2")
    run("bundle", "bundle", "--build-number", "2", "--debug")
    if with_repo:
        run("publish", "publish", "--debug")
        run("fetch", "fetch", "--bundle-id", str(pipe.run_record()["bundleId"]), "--debug")
        run("wrong-artifact-password", "publish", "--debug", env={"ARTIFACTS_PASSWORD": wrong})
    run("deploy", "deploy", "--env", "test", "--debug")
    run("smoke-fails", "smoke", "--env", "test", "--debug")
    run("rollback", "rollback", "--env", "test", "--debug")
    run("test", "test", "--env", "test", "--debug")
    run("approve", "approve", "--env", "prod", "--approver", "bob")
    run("wrong-design-key", "validate", "--debug", env={DESIGN_KEY_ENV: wrong})
    pipe.automation["prod"].set_faults({"seed": 3, "rules": [{"rate": 0.3, "status": 503}]})
    run("faulted-status", "status", "--env", "prod", "--debug")
    pipe.automation["prod"].clear_faults()
    saved = pipe.config["environments"][1]["url"]
    pipe.config["environments"][1]["url"] = f"http://127.0.0.1:{free_port()}"
    pipe.write_config()
    run("unreachable", "status", "--env", "prod", "--debug")
    pipe.config["environments"][1]["url"] = saved
    pipe.write_config()


def test_groovy_step_tests_assert_no_key_leaks() -> None:
    """The Jenkins library's tests check the keys bound by withCredentials never reach sh, logs or files."""
    steps = sorted((GROOVY_TESTS / "steps").glob("*Test.groovy"))
    assert steps, "no Groovy step tests found"
    checked = [p.name for p in steps if "assertNoSecretLeaked()" in p.read_text()]
    assert len(checked) >= 3, f"only {checked} assert no secret leaks"
    e2e = (GROOVY_TESTS / "e2e" / "PipelineEndToEndTest.groovy").read_text()
    assert re.search(r"@After\s+void noKeyLeaked\(\)", e2e), "the Groovy end-to-end test scans for no key"


# -- the scanner reaches the case: planted forms are found, and a hit fails the session -----------------
PLANT_ENV = "MLCD_CANARY_PLANT"


def planted_forms(key: str) -> dict[str, str]:
    """A leak of ``key`` in each form the scanner must catch, inside ordinary text."""
    return {
        "cut": f"error: 401 body={{'detail': 'bad key {key[:-1]}'}}",  # the key minus its last character
        "window": f"... {key[21:29]} ...",  # 8 characters from the random part
        "url": "index https://ci:" + urllib.parse.quote(f"{key}@x", safe="") + "@pypi.example/simple",
        "base64-basic": "Authorization: Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "base64-user": "header " + base64.b64encode(f"xy-ci:{key}".encode()).decode(),
        "base64-key": "data=" + base64.urlsafe_b64encode(f"k={key}".encode()).decode(),
    }


def test_scanner_finds_every_planted_form() -> None:
    """Each planted form is found in text and in a file; the same text with another string is clean."""
    key, other = canaries.new_canary(), canaries.new_canary()
    for kind, text in planted_forms(key).items():
        report = canaries.scan_texts([(kind, text)], [other, key], ["ci"])
        assert report.hits, f"{kind} leak not found: {text}"
        clean = planted_forms("Y" * len(key))[kind]
        assert not canaries.scan_texts([(kind, clean)], [other, key], ["ci"]).hits, kind
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sub").mkdir()
        (Path(tmp) / "sub" / "stage.json").write_text(planted_forms(key)["cut"])
        (Path(tmp) / "node").mkdir()
        (Path(tmp) / "node" / "node.json").write_text(key)  # a stand-in's own data: not an mlcd output
        files = canaries.output_files([Path(tmp)])
        assert [p.name for p in files] == ["stage.json"]
        assert len(canaries.scan_paths(files, [key]).hits) == 1


@pytest.mark.skipif(not os.environ.get(PLANT_ENV), reason="only run by test_session_scan_fails_on_a_leak")
def test_plant_a_leak(tmp_path: Path) -> None:
    """Leave a canary's partial, URL-encoded and base64 forms in files under the session's tmp dir."""
    key = canaries.new_canary()
    for kind in os.environ[PLANT_ENV].split(","):
        (tmp_path / f"{kind}.log").write_text(planted_forms(key)[kind])


def test_session_scan_fails_on_a_leak() -> None:
    """A pytest session of this suite that leaves a planted form in its tmp dir fails, naming the file."""
    kinds = ["cut", "url", "base64-basic"]
    env = {k: v for k, v in os.environ.items() if k not in (RESULTS_ENV, canaries.DIR_ENV)}
    env.update({PLANT_ENV: ",".join(kinds), "MLCD_CANARY_SCAN": "1"})
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp}/t",
             f"{__file__}::test_plant_a_leak"],
            cwd=Path(__file__).resolve().parents[3], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "3 hits" in proc.stdout, proc.stdout
    for kind in kinds:
        assert f"{kind}.log" in proc.stdout, proc.stdout


# -- the demo ------------------------------------------------------------------------------------------
DEMO_KEY_ENVS = ("DSS_DESIGN_API_KEY", "DSS_TEST_API_KEY", "DSS_PROD_API_KEY",  # design, test, prod nodes
                 "CHURN_API_KEY", "DSS_API_DEPLOYER_API_KEY")  # the API node and API Deployer  # fmt: skip


@pytest.mark.reliability
@pytest.mark.timeout(900)
def test_demo_with_canary_keys_leaks_nowhere() -> None:
    """`scripts/demo.py` with a canary for every node's key: nothing it printed or wrote holds any form.

    Its out dir lives outside pytest's tmp dir, so only this scan (not the session's) reads it;
    the stand-in nodes' data dirs are their own state (the API Deployer's holds the API node's key).
    """
    keys = {var: canaries.new_canary() for var in DEMO_KEY_ENVS}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLCD_", "BUILD_"))}
    with tempfile.TemporaryDirectory(prefix="mlcd-demo-scan-") as tmp:
        out = Path(tmp) / "demo-out"
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "demo.py"), "--out-dir", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=880, env={**env, **keys},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        files = canaries.output_files([out], inputs=())  # its generated mlcd.yaml files too
        names = {p.name for p in files}
        assert {"audit.jsonl", "console.log", "report.html", "mlcd.yaml"} <= names, sorted(names)
        report = canaries.scan_texts([("demo stdout", done.stdout), ("demo stderr", done.stderr)],
                                     keys.values())  # fmt: skip
        report = canaries.scan_texts(((str(p.relative_to(out)), p.read_bytes()) for p in files),
                                     keys.values(), report=report)  # fmt: skip
    record_result("canary_demo", keys=len(keys), **report.counts())
    assert report.files > 20 and report.bytes > 10_000
    assert not report.hits, report.hits
