"""Security, local attacks (issue 12): each test plays an attacker who can write somewhere mlcd reads
(the lock directory, the audit trail, the artifact repository, the run record) and checks that mlcd
fails safe: the documented exit code, one line on stderr, nothing deployed.
"""

from __future__ import annotations

from pathlib import Path

from reltools import node_state, one_line_error, record_result

from helpers.pipeline_env import PipelineEnv
from mlcd.locking import lock_path


def test_symlinked_deploy_lock_is_refused_and_its_target_kept(rpipe: PipelineEnv, tmp_path: Path) -> None:
    """Finding 6: a pre-created lock symlink made the deploy truncate the file it points to."""
    assert rpipe.mlcd("bundle").returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("a file the CI user can write\n")
    locks = Path(rpipe.env["MLCD_LOCK_DIR"])
    locks.mkdir(mode=0o700, exist_ok=True)
    lock_path(rpipe.project_key, "test", locks).symlink_to(victim)
    before = node_state(rpipe)
    proc = rpipe.mlcd("deploy", "--env", "test")
    line = one_line_error(proc.stderr)
    ok = (
        proc.returncode == 2
        and "symbolic link" in line
        and victim.read_text() == "a file the CI user can write\n"
        and node_state(rpipe) == before
    )
    record_result("security_local", case="lock-symlink", passed=ok)
    assert proc.returncode == 2, proc.stderr
    assert line.startswith("mlcd deploy: error: deploy lock file") and "symbolic link" in line
    assert victim.read_text() == "a file the CI user can write\n"
    assert node_state(rpipe) == before
