"""Secrets: recognisable canary API keys run through every command, failures included.

Every node gets a key ``SECRET-mlcd-canary-<random>`` (the artifact repository a
canary password). Each command runs, with ``--debug`` on failures so tracebacks
and HTTP details are printed too, while a sampler reads the command line of every
process on the machine (psutil). Then every byte mlcd printed and every file it
wrote (out dir, reports, audit, run record, config, the artifact repository's
store; the nodes' own data dirs excluded) is scanned for the canaries and for
their HTTP Basic form: zero occurrences, and no key in any process's argv.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from support.artifact_server import ArtifactServer, free_port, nginx_available
from support.pipeline_env import DESIGN_KEY_ENV, PipelineEnv, key_env_name
from support.reltools import fast_pipeline, record_result

CANARY = "SECRET-mlcd-canary-"
GROOVY_TESTS = Path(__file__).resolve().parents[2] / "groovy"


def canary() -> str:
    """A fresh canary key."""
    return CANARY + secrets.token_hex(12)


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
                    self.leaks.append(f"pid {proc.info['pid']}: {cmdline[:80]}…")
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
    needles = leaked + [base64.b64encode(f"{k}:".encode()).decode() for k in leaked]
    needles.append(base64.b64encode(f"ci:{password}".encode()).decode())
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
    scanned = [p for p in pipe.root.rglob("*")
               if p.is_file() and not _node_data(pipe, p) and p != pipe.config_path]  # fmt: skip
    if repo is not None:
        scanned += [p for p in repo.store_dir.rglob("*") if p.is_file()]
    found = [f"output #{i}" for i, text in enumerate(outputs) if any(n in text for n in needles)]
    for path in scanned:
        data = path.read_bytes()
        if any(n.encode() in data for n in needles):
            found.append(str(path))
    found += sampler.leaks
    record_result("secrets", files=len(scanned), outputs=len(outputs), processes=len(sampler.seen),
                  leaks=len(found))  # fmt: skip
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


def _node_data(pipe: PipelineEnv, path: Path) -> bool:
    return any(path.is_relative_to(n.data_dir) for n in pipe.nodes())


def test_groovy_step_tests_assert_no_key_leaks() -> None:
    """The Jenkins library's tests check the keys bound by withCredentials never reach sh, logs or files."""
    steps = sorted((GROOVY_TESTS / "steps").glob("*Test.groovy"))
    assert steps, "no Groovy step tests found"
    checked = [p.name for p in steps if "assertNoSecretLeaked()" in p.read_text()]
    assert len(checked) >= 3, f"only {checked} assert no secret leaks"
    e2e = (GROOVY_TESTS / "e2e" / "PipelineEndToEndTest.groovy").read_text()
    assert re.search(r"@After\s+void noKeyLeaked\(\)", e2e), "the Groovy end-to-end test scans for no key"
