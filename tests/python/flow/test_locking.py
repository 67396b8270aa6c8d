"""Unit tests of the deploy lock: contention with a visible holder, timeout, release on crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcd.errors import LockTimeout
from mlcd.locking import LockHolder, deploy_lock, lock_path, read_holder

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlcd.locking import deploy_lock
    d = Path(sys.argv[1])
    with deploy_lock("P", "prod", 5, build_url="http://ci/job/7/", command="deploy", directory=d):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_second_deploy_waits_shows_the_holder_and_times_out(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    seen: list[LockHolder | None] = []
    with (
        pytest.raises(LockTimeout) as err,
        deploy_lock("P", "prod", 0.5, directory=tmp_path, on_wait=lambda h, p: seen.append(h)),
    ):
        pytest.fail("the lock must not be granted while another process holds it")
    assert seen and seen[0] is not None
    assert seen[0].pid == holder.pid and seen[0].build_url == "http://ci/job/7/"
    text = err.value.one_line()
    assert f"pid {holder.pid}" in text and "http://ci/job/7/" in text and "nothing was changed" in text


def test_lock_is_granted_once_the_holder_finishes(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait()
    with deploy_lock("P", "prod", 5, directory=tmp_path):
        info = read_holder(lock_path("P", "prod", tmp_path))
        assert info is not None and info.pid is not None and info.pid != holder.pid


def test_crashed_holder_lock_is_released_by_the_os(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    with deploy_lock("P", "prod", 5, directory=tmp_path) as path:
        assert path == lock_path("P", "prod", tmp_path)


def test_other_environment_is_not_blocked(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with deploy_lock("P", "test", 0.1, directory=tmp_path):
        pass


def _child_takes_lock(directory: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from mlcd.locking import deploy_lock\n"
        "with deploy_lock('P', 'prod', 0.2, directory=Path(sys.argv[1])): pass"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(directory)], capture_output=True, text=True, check=False
    )


def test_lock_is_reentrant_within_one_process_and_held_until_the_outer_exit(tmp_path: Path) -> None:
    with deploy_lock("P", "prod", 0.1, directory=tmp_path):
        with deploy_lock("P", "prod", 0.1, directory=tmp_path):
            pass
        blocked = _child_takes_lock(tmp_path)
        assert blocked.returncode != 0 and "LockTimeout" in blocked.stderr
    assert _child_takes_lock(tmp_path).returncode == 0
