"""Flask is an optional extra (`mlcd[sim]`): mlcd itself runs without a web framework."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomllib

from support.pipeline_env import start_pipeline_env

ROOT = Path(__file__).resolve().parents[3]
# runs the mlcd CLI in an interpreter where `import flask` / `import werkzeug` fail, as after `pip install .`
NO_FLASK = (
    "import sys; sys.modules['flask'] = None; sys.modules['werkzeug'] = None; "
    "from mlcd.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _mlcd_without_flask(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_FLASK, *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plain_install_declares_no_web_framework() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plain = " ".join(project["dependencies"]).lower()
    assert "flask" not in plain and "werkzeug" not in plain
    assert any(d.lower().startswith("flask") for d in project["optional-dependencies"]["sim"])
    assert "mlcd[sim]" in project["optional-dependencies"]["dev"]


def test_sim_serve_without_flask_says_how_to_install_it(tmp_path: Path) -> None:
    env = dict(os.environ, MLCD_SIM_API_KEY="k-123")
    proc = _mlcd_without_flask(
        "sim", "serve", "--role", "design", "--data-dir", str(tmp_path), cwd=tmp_path, env=env
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "mlcd sim: error: the stand-in needs Flask, which mlcd installs only with its 'sim' extra "
        "(fix: pip install 'mlcd[sim]')"
    ]


def test_help_and_pipeline_commands_work_without_flask(tmp_path: Path) -> None:
    assert _mlcd_without_flask("--help", cwd=tmp_path).returncode == 0
    with start_pipeline_env(tmp_path / "pipe", envs=("test",)) as pipe:  # the nodes run with Flask
        env = dict(pipe.env, MLCD_LOCK_DIR=str(tmp_path / "locks"))
        for args in (("validate",), ("bundle", "--build-number", "1"), ("deploy", "--env", "test"),
                     ("status", "--env", "test")):  # fmt: skip
            proc = _mlcd_without_flask(*args, cwd=pipe.root, env=env)
            assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
