"""A newcomer's first hour: what `make demo`, `mlcd run` and the example print must read right."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lxml import etree

from mlcd.artifacts import TransferProgress
from mlcd.console import human_size
from support.pipeline_env import PipelineEnv, start_pipeline_env

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 bytes"), (812, "812 bytes"), (5103, "5.1 KB"), (48_000, "48 KB"), (3_400_000, "3.4 MB"),
     (250_000_000, "250 MB"), (1_200_000_000, "1.2 GB")],
)  # fmt: skip
def test_sizes_read_as_a_person_would_say_them(size: int, text: str) -> None:
    assert human_size(size) == text


def test_download_line_of_a_small_archive_is_readable() -> None:
    """A 48 KB archive used to print '0.0 MB of 0.0 MB (100%), 26.0 MB/s'."""
    lines: list[str] = []
    TransferProgress(lines.append, "download B")(48_000, 48_000)
    assert lines == ["download B: 48 KB of 48 KB (100%)"]


def test_churn_readme_agrees_with_its_mlcd_yaml() -> None:
    """The README describes what the example's mlcd.yaml does after a failed test gate."""
    config = yaml.safe_load((REPO / "examples" / "churn" / "mlcd.yaml").read_text())
    readme = (REPO / "examples" / "churn" / "README.md").read_text()
    test_env = next(e for e in config["environments"] if e["name"] == "test")
    if test_env.get("rollback_on_failure", True):
        assert "kept for inspection" not in readme
        assert "rolled back" in readme


def test_pyproject_license_is_an_spdx_string() -> None:
    """A TOML-table `license` makes setuptools print a boxed deprecation warning on every install."""
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert data["project"]["license"] == "Apache-2.0"
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in data["build-system"]["requires"])


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PipelineEnv, str]]:
    """`mlcd run` once in a git checkout, with an environment called `test`."""
    root = tmp_path_factory.mktemp("newcomer") / "pipe"
    options = {"test": {"tests": {"scenarios": ["TEST_PASS"]}}}
    with start_pipeline_env(root, envs=("test",), env_options=options) as pipe:
        pipe.set_design_variables(slow_seconds=0.1)
        pipe.env["MLCD_LOCK_DIR"] = str(root / "locks")
        git = ["git", "-c", "user.name=n", "-c", "user.email=n@example.com"]
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "add", "mlcd.yaml"], cwd=root, check=True)
        subprocess.run([*git, "commit", "-qm", "config"], cwd=root, check=True)
        sha = subprocess.run(
            ["git", "rev-parse", "--short=8", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        proc = pipe.mlcd("run", extra_env={"BUILD_NUMBER": "17"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield pipe, proc.stdout + "\n" + sha


def test_stage_labels_do_not_stutter(ran: tuple[PipelineEnv, str]) -> None:
    """An environment named `test` gave '=== stage 4: test test ==='."""
    out = ran[1]
    stages = [line for line in out.splitlines() if line.startswith("=== stage")]
    assert any(line.endswith(": test on test ===") for line in stages), stages
    assert not any("test test" in line for line in stages), stages


def test_validate_shows_the_id_this_checkout_would_get(ran: tuple[PipelineEnv, str]) -> None:
    """Not a made-up sha and build: the checkout's sha and $BUILD_NUMBER."""
    pipe, out = ran
    sha = out.rsplit("\n", 1)[1]
    xml = etree.parse(str(pipe.out_dir / "reports" / "validate.xml")).getroot()
    text = " ".join(etree.tostring(case, encoding="unicode") for case in xml.iter("testcase"))
    assert f"_{sha}_b17" in text, text
    assert "0a1b2c3d" not in text


@pytest.mark.slow
def test_building_the_package_prints_no_deprecation_warning(tmp_path: Path) -> None:
    """What `make demo`'s install builds: the wheel's metadata, without a setuptools warning."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Deprecat" not in proc.stdout + proc.stderr
    wheel = next(tmp_path.glob("mlcd-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta
