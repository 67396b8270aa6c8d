"""Shared fixtures: stand-in DSS nodes (``mlcd.sim``) on loopback, and a tiny project to put on them.

Fixtures (every node is stopped at the end of the test):

* ``sim_api_key``: a random API key for the nodes of one test.
* ``sim_project_factory(root, key="SIMPRJ", scenarios=None, connections=("warehouse",), files=None)``:
  writes a project folder (docs/stand-in.md format) under ``root/projects/<key>/`` and returns it.
* ``sim_design``: a design node with project ``SIMPRJ`` (see :data:`SIM_SCENARIOS`).
* ``sim_automation``: an automation node declaring connection ``warehouse``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlcd.sim.launcher import SimNode

SIM_PROJECT_KEY = "SIMPRJ"

# scenario id -> (definition without id, script name -> source)
SIM_SCENARIOS: dict[str, dict[str, Any]] = {
    "TEST_OK": {
        "name": "Passes",
        "markedAsTest": True,
        "steps": [{"id": "check", "name": "Check", "type": "python", "script": "scripts/ok.py"}],
    },
    "TEST_FAIL": {
        "name": "Fails",
        "markedAsTest": True,
        "steps": [
            {"id": "first", "type": "python", "script": "scripts/ok.py"},
            {"id": "boom", "name": "Boom", "type": "python", "script": "scripts/fail.py"},
            {"id": "never", "type": "python", "script": "scripts/ok.py"},
        ],
    },
    "TEST_WARN": {
        "name": "Warns",
        "markedAsTest": True,
        "steps": [{"id": "warn", "type": "python", "script": "scripts/warn.py"}],
    },
    "SLOW": {
        "name": "Waits",
        "markedAsTest": False,
        "active": True,
        "steps": [{"id": "pause", "type": "wait", "seconds": 30}],
    },
    "SLEEPY_SCRIPT": {
        "name": "Long script",
        "steps": [{"id": "sleep", "type": "python", "script": "scripts/sleep.py"}],
    },
}

SIM_SCRIPTS: dict[str, str] = {
    "ok.py": (
        "import json, os\n"
        "variables = json.load(open(os.environ['MLCD_VARIABLES']))\n"
        "print('project', os.environ['MLCD_PROJECT_KEY'], 'scenario', os.environ['MLCD_SCENARIO_ID'])\n"
        "print('node', os.environ['MLCD_NODE_NAME'], 'threshold', variables.get('threshold'))\n"
        "print('connections', sorted(json.load(open(os.environ['MLCD_CONNECTIONS']))))\n"
        "print('api key visible:', 'MLCD_SIM_API_KEY' in os.environ)\n"
    ),
    "fail.py": (
        "import sys\nprint('about to fail')\n"
        "sys.stderr.write('ValueError: model AUC 0.51 below 0.7\\n')\nsys.exit(3)\n"
    ),
    "warn.py": (
        "import json, os\n"
        "json.dump({'outcome': 'WARNING', 'message': 'drift close to limit'},"
        " open(os.environ['MLCD_STEP_RESULT'], 'w'))\n"
    ),
    "sleep.py": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
}


def write_sim_project(
    root: Path,
    key: str = SIM_PROJECT_KEY,
    scenarios: dict[str, dict[str, Any]] | None = None,
    connections: Iterable[str] = ("warehouse",),
    files: dict[str, str | bytes] | None = None,
    variables: dict[str, Any] | None = None,
) -> Path:
    """Write a project folder under ``root/projects/<key>/`` and return its path."""
    project = root / "projects" / key
    (project / "scenarios").mkdir(parents=True, exist_ok=True)
    (project / "scripts").mkdir(parents=True, exist_ok=True)
    (project / "project.json").write_text(
        json.dumps(
            {"projectKey": key, "name": f"Project {key}", "owner": "ci", "connections": list(connections)}
        )
    )
    (project / "variables.json").write_text(
        json.dumps(variables or {"standard": {"threshold": 0.7}, "local": {"design_only": True}})
    )
    for sid, definition in (SIM_SCENARIOS if scenarios is None else scenarios).items():
        (project / "scenarios" / f"{sid}.json").write_text(json.dumps({"id": sid, **definition}))
    for name, source in SIM_SCRIPTS.items():
        (project / "scripts" / name).write_text(source)
    for rel, content in (files or {}).items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return project


@pytest.fixture
def sim_api_key() -> str:
    """A random API key for this test's nodes."""
    return "simkey-" + secrets.token_hex(12)


@pytest.fixture
def sim_project_factory() -> Callable[..., Path]:
    """:func:`write_sim_project`."""
    return write_sim_project


@pytest.fixture
def sim_design(tmp_path: Path, sim_api_key: str) -> Iterator[SimNode]:
    """A design node holding project SIMPRJ."""
    data = tmp_path / "design"
    write_sim_project(data)
    node = SimNode.start(
        role="design", data_dir=data, api_key=sim_api_key, connections={"warehouse": {"type": "PostgreSQL"}}
    )
    with node:
        yield node


@pytest.fixture
def sim_automation(tmp_path: Path, sim_api_key: str) -> Iterator[SimNode]:
    """An automation node declaring connection ``warehouse``."""
    node = SimNode.start(
        role="automation",
        data_dir=tmp_path / "automation",
        api_key=sim_api_key,
        node_name="auto-test",
        connections={"warehouse": {"type": "PostgreSQL"}},
    )
    with node:
        yield node


@pytest.fixture(autouse=True, scope="session")
def _private_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Deploy locks of this test process in its own directory (tests that set ``MLCD_LOCK_DIR`` keep theirs).

    Without it every test and every pytest-xdist worker would share ``/tmp/mlcd-locks-<uid>``: two tests
    deploying ``SIMPRJ`` to ``test`` at the same time would wait for each other's lock.
    """
    previous = os.environ.get("MLCD_LOCK_DIR")
    os.environ["MLCD_LOCK_DIR"] = str(tmp_path_factory.mktemp("locks"))
    yield
    if previous is None:
        os.environ.pop("MLCD_LOCK_DIR", None)
    else:
        os.environ["MLCD_LOCK_DIR"] = previous


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep a module whose tests share a module-scoped fixture on one pytest-xdist worker.

    ``make test`` runs ``--dist loadgroup``: without a group, the tests of such a module would be spread
    over the workers and each worker would build the fixture again (a demo run, a released pipeline), or
    see only part of a sequence of tests sharing one pipeline. Runs before xdist turns the marks into groups.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(d.scope in ("module", "package", "class") for chain in defs for d in chain):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
