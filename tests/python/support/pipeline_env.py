"""A whole pipeline on loopback: one stand-in design node, N automation nodes, mlcd.yaml, API keys.

Usage (the API is stable; other suites rely on it)::

    from support.pipeline_env import start_pipeline_env

    with start_pipeline_env(tmp_path, envs=("test", "prod")) as pipe:
        pipe.set_design_variables(fail_test=True)     # make the release fail on purpose
        proc = pipe.mlcd("bundle", "--build-number", "7")
        assert proc.returncode == 0, proc.stderr
        pipe.run_record()                             # .mlcd/run.json as a dict

What it sets up, under ``root``:

* ``design/`` and ``auto-<env>/``: data dirs of the :class:`~mlcd.sim.launcher.SimNode`s.
  The sample project (``tests/fixtures/projects/SAMPLE``, project key ``SAMPLE``) is
  copied to the design node. Its scenarios: TEST_PASS (WARNING when ``warn_test``),
  TEST_FAIL_ON_VAR (fails when ``fail_test``), TEST_SMOKE (fails when ``fail_smoke``),
  TEST_SLOW (sleeps ``slow_seconds``, default 1) and BUILD_MODEL (not a test).
  The design node declares connection ``warehouse``; automation node ``<env>``
  declares ``warehouse_<env>`` and the config remaps ``warehouse`` to it.
* ``mlcd.yaml`` (``pipe.config_path``): one environment per name, in order; the
  defaults per environment are in :data:`DEFAULT_ENV_OPTIONS` and can be
  overridden per environment with ``env_options={"prod": {"approval": False}}``.
* ``pipe.env``: a copy of ``os.environ`` plus a distinct random API key per node
  in ``DSS_DESIGN_API_KEY`` / ``DSS_<ENV>_API_KEY``, a signing key in
  ``MLCD_SIGNING_KEY`` (``signing: {key_env: MLCD_SIGNING_KEY}`` in mlcd.yaml) and
  ``MLCD_CONFIG``/``MLCD_OUT_DIR`` pointing at the config and ``root/.mlcd``;
  ``pipe.mlcd(...)`` runs the real CLI (``python -m mlcd``) with it, cwd = ``root``.

``pipe.stop()`` (or leaving the ``with`` block) stops every node it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from mlcd.sim.launcher import SimNode
from support import canary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SAMPLE_PROJECT = FIXTURES / "projects" / "SAMPLE"
DESIGN_KEY_ENV = "DSS_DESIGN_API_KEY"
SIGNING_KEY_ENV = "MLCD_SIGNING_KEY"  # HMAC key of published metadata and the audit chain
CANARY_KEYS = False  # the reliability suite sets it: every key is a canary (support/canary.py)

DEFAULT_ENV_OPTIONS: dict[str, Any] = {
    "approval": False,
    "tests": {"prefix": "TEST_", "exclude": []},
    "smoke": ["TEST_SMOKE"],
    "warning": "fail",
    "flaky": {},
    "timeouts": {"scenario": 60, "deploy": 120, "lock": 30},
    "rollback_on_failure": True,
}


def key_env_name(env: str) -> str:
    """Name of the env var holding the API key of environment ``env`` (``DSS_<ENV>_API_KEY``)."""
    return f"DSS_{env.upper().replace('-', '_').replace('.', '_')}_API_KEY"


@dataclass
class PipelineEnv:
    """A running stand-in pipeline (see the module docstring)."""

    root: Path
    project_key: str
    design: SimNode
    automation: dict[str, SimNode]
    config_path: Path
    out_dir: Path
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)  # env var name -> API key
    config: dict[str, Any] = field(default_factory=dict)  # what mlcd.yaml holds

    # -- design node project ----------------------------------------------------------------------
    @property
    def design_project_dir(self) -> Path:
        """The project folder on the design node (edit it to change what the next bundle holds)."""
        return self.design.data_dir / "projects" / self.project_key

    def set_design_variables(self, **standard: Any) -> None:
        """Merge ``standard`` project variables on the design node (e.g. ``fail_test=True``)."""
        path = self.design_project_dir / "variables.json"
        data = json.loads(path.read_text())
        data.setdefault("standard", {}).update(standard)
        path.write_text(json.dumps(data, indent=2))

    # -- configuration ------------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any] | None = None) -> Path:
        """Write ``config`` (default: ``self.config``) to ``mlcd.yaml`` and remember it."""
        if config is not None:
            self.config = config
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return self.config_path

    def env_config(self, name: str) -> dict[str, Any]:
        """The mutable config mapping of environment ``name`` (call :meth:`write_config` after edits)."""
        for item in self.config["environments"]:
            if item["name"] == name:
                return dict_any(item)
        raise KeyError(name)

    # -- running mlcd ---------------------------------------------------------------------------------
    def mlcd(
        self, *args: str, timeout: float = 300, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m mlcd ARGS`` (cwd = root); return the completed process, whatever its exit code."""
        env = dict(self.env)
        if extra_env:
            env.update(extra_env)
        proc = subprocess.run(
            [sys.executable, "-m", "mlcd", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        canary.capture("mlcd " + " ".join(args), proc.stdout, proc.stderr)
        return proc

    def run_record(self) -> dict[str, Any]:
        """The run record (``.mlcd/run.json``) as a dict."""
        return dict_any(json.loads((self.out_dir / "run.json").read_text()))

    def stage_file(self, name: str) -> dict[str, Any]:
        """A stage result file, e.g. ``stage_file("deploy-test")``."""
        return dict_any(json.loads((self.out_dir / f"{name}.json").read_text()))

    def audit_records(self) -> list[dict[str, Any]]:
        """Every record of ``.mlcd/audit.jsonl``."""
        path = self.out_dir / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- life cycle -----------------------------------------------------------------------------------
    def nodes(self) -> list[SimNode]:
        """Every node of the pipeline, design first."""
        return [self.design, *self.automation.values()]

    def stop(self) -> None:
        """Stop every node (idempotent)."""
        for node in self.nodes():
            node.stop()

    def __enter__(self) -> PipelineEnv:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


APPROVAL_KEY_ENV = "MLCD_APPROVAL_KEY"


def enable_approval_signing(pipe: PipelineEnv) -> str:
    """Make approvals signed: a new Ed25519 key in ``MLCD_APPROVAL_KEY``, its public half beside mlcd.yaml.

    Returns the private key (hex); it is also added to ``pipe.keys`` (a secret to scan for).
    """
    from mlcd.signing import keygen

    private, public = pipe.root / "approval.key", pipe.root / "approval-key.pub"
    private.unlink(missing_ok=True)
    keygen(private, public)
    seed = private.read_text().strip()
    private.unlink()
    pipe.config.setdefault("signing", {}).update(
        approval_key_env=APPROVAL_KEY_ENV, approval_public_key_file=public.name
    )
    pipe.write_config()
    pipe.env[APPROVAL_KEY_ENV] = pipe.keys[APPROVAL_KEY_ENV] = seed
    return seed


def dict_any(value: Any) -> dict[str, Any]:
    """``value`` typed as a dict (for JSON/YAML mappings)."""
    assert isinstance(value, dict)
    return value


def copy_sample_project(dest_projects_dir: Path, project: Path = SAMPLE_PROJECT) -> Path:
    """Copy a fixture project folder into a node's ``projects/`` directory; return its new path."""
    dest = dest_projects_dir / project.name
    shutil.copytree(project, dest, dirs_exist_ok=True)
    return dest


def start_pipeline_env(
    root: Path,
    envs: Sequence[str] = ("test", "prod"),
    *,
    project: Path = SAMPLE_PROJECT,
    env_options: dict[str, dict[str, Any]] | None = None,
    artifact_repository: dict[str, Any] | None = None,
    bundle: dict[str, Any] | None = None,
    design_faults: dict[str, Any] | None = None,
) -> PipelineEnv:
    """Start a design node with the sample project and one automation node per name in ``envs``.

    ``env_options`` overrides the per-environment defaults (:data:`DEFAULT_ENV_OPTIONS`);
    ``artifact_repository`` and ``bundle`` become those sections of ``mlcd.yaml``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    project_key = json.loads((project / "project.json").read_text())["projectKey"]
    keys: dict[str, str] = {DESIGN_KEY_ENV: "dk-" + secrets.token_hex(16)}
    for name in envs:
        keys[key_env_name(name)] = f"ak{name[:3]}-" + secrets.token_hex(16)
    keys[SIGNING_KEY_ENV] = "sk-" + secrets.token_hex(24)
    if CANARY_KEYS:
        keys = {var: canary.new_canary() for var in keys}
    design_dir = root / "design"
    (design_dir / "projects").mkdir(parents=True, exist_ok=True)
    copy_sample_project(design_dir / "projects", project)
    started: list[SimNode] = []
    try:
        design = SimNode.start(
            role="design",
            data_dir=design_dir,
            api_key=keys[DESIGN_KEY_ENV],
            node_name="design",
            connections={"warehouse": {"type": "PostgreSQL"}},
            faults=design_faults,
        )
        started.append(design)
        automation: dict[str, SimNode] = {}
        for name in envs:
            node = SimNode.start(
                role="automation",
                data_dir=root / f"auto-{name}",
                api_key=keys[key_env_name(name)],
                node_name=f"automation-{name}",
                connections={f"warehouse_{name}": {"type": "PostgreSQL"}},
            )
            started.append(node)
            automation[name] = node
    except BaseException:
        for node in started:
            node.stop()
        raise

    environments = []
    for name in envs:
        item: dict[str, Any] = {
            "name": name,
            "url": automation[name].url,
            "api_key_env": key_env_name(name),
            "connection_remappings": {"warehouse": f"warehouse_{name}"},
        }
        item.update(json.loads(json.dumps(DEFAULT_ENV_OPTIONS)))
        item.update((env_options or {}).get(name, {}))
        environments.append(item)
    config: dict[str, Any] = {
        "project": project_key,
        "allow_insecure_http": True,  # the stand-in nodes listen on plain http on loopback
        "design": {"url": design.url, "api_key_env": DESIGN_KEY_ENV},
    }
    if bundle:
        config["bundle"] = bundle
    if artifact_repository:
        config["artifact_repository"] = artifact_repository
    config["signing"] = {"key_env": SIGNING_KEY_ENV}
    config["environments"] = environments

    out_dir = root / ".mlcd"
    config_path = root / "mlcd.yaml"
    env = dict(os.environ)
    for var in ("BUILD_URL", "BUILD_NUMBER", "MLCD_CONFIG", "MLCD_OUT_DIR"):
        env.pop(var, None)
    env.update(keys)
    env["MLCD_CONFIG"] = str(config_path)
    env["MLCD_OUT_DIR"] = str(out_dir)
    env["PYTHONUNBUFFERED"] = "1"
    pipe = PipelineEnv(
        root=root,
        project_key=project_key,
        design=design,
        automation=automation,
        config_path=config_path,
        out_dir=out_dir,
        env=env,
        keys=keys,
        config=config,
    )
    pipe.write_config()
    return pipe
