"""Fixtures of the reliability suite (tools in ``support/reltools.py``), and its canary check.

Every stand-in pipeline of the suite gets canary keys (``support/canary.py``). When
``scripts/reliability.py`` runs the suite (``MLCD_RELIABILITY_RESULTS`` set) or
``MLCD_CANARY_SCAN=1``, what every ``pipe.mlcd`` call printed is kept under the
session's temporary directory, and at the end of the session every file the tests
left there (out dirs, reports, audit trails, stage files, logs, captured output;
stand-in node data dirs and test inputs such as ``mlcd.yaml`` excepted) and the
results directory (JUnit XML) are scanned for every form of every canary issued.
The counts go to the results file (the summary's security section); a hit fails the run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import canary, pipeline_env
from support.pipeline_env import PipelineEnv
from support.reltools import RESULTS_ENV, fast_pipeline, record_result

SCAN_ENV = "MLCD_CANARY_SCAN"
BASIC_USERS = ("ci",)  # the artifact repository's user name in the suite


@pytest.fixture(scope="session", autouse=True)
def canary_keys() -> Iterator[None]:
    """Every pipeline started by a reliability test gets canary keys (session scope: module-scoped
    pipelines too; tests of other directories run in the same session after it get them as well)."""
    pipeline_env.CANARY_KEYS = True
    yield
    pipeline_env.CANARY_KEYS = False


@pytest.fixture
def rpipe(tmp_path: Path) -> Iterator[PipelineEnv]:
    """A fast stand-in pipeline (design, test, prod; ``reltools.fast_pipeline``), stopped after it."""
    with fast_pipeline(tmp_path / "pipe") as pipe:
        yield pipe


def _scanning() -> bool:
    return bool(os.environ.get(RESULTS_ENV) or os.environ.get(SCAN_ENV))


def _basetemp(config: pytest.Config) -> Path:
    factory = getattr(config, "_tmp_path_factory")  # noqa: B009 (private to pytest); pytest's session TempPathFactory
    return Path(factory.getbasetemp())


def pytest_sessionstart(session: pytest.Session) -> None:
    """Keep issued keys and captured output under the session's temporary directory."""
    if _scanning():
        os.environ[canary.DIR_ENV] = str(_basetemp(session.config) / "canary")


@pytest.hookimpl(trylast=True)  # after the JUnit XML is written
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Scan everything the session left for every canary; record the counts; fail on a hit."""
    if not _scanning():
        return
    where = _basetemp(session.config)
    keys = canary.issued_keys(where / "canary")
    roots = [where]
    if os.environ.get(RESULTS_ENV):
        roots.append(Path(os.environ[RESULTS_ENV]))
    files = canary.output_files(roots, skip=[where / "canary" / canary.KEYS_FILE])
    report = canary.scan_paths(files, keys, BASIC_USERS)
    record_result("canary_scan", keys=len(keys), **report.counts())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"canary scan: {len(keys)} canary keys, {report.needles} forms, {report.files} files, "
            f"{report.bytes} bytes: {len(report.hits)} hits")  # fmt: skip
    if reporter is not None:
        reporter.write_line(line)
        for hit in report.hits[:50]:
            reporter.write_line(f"  canary found in {hit}", red=True)
    if report.hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
