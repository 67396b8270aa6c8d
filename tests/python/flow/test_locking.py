"""Unit tests of the deploy lock: contention with a visible holder, timeout, release on crash."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcd.errors import InputError, LockTimeout
from mlcd.locking import LockHolder, default_lock_dir, deploy_lock, lock_path, read_holder

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


# -- a private lock directory (issue 12, finding 6) ------------------------------------------------
def test_pre_created_symlink_lock_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    lock_path("P", "prod", locks).symlink_to(victim)
    with pytest.raises(InputError) as err, deploy_lock("P", "prod", 0.1, directory=locks):
        pytest.fail("a symbolic link must never be taken as the lock file")
    assert victim.read_text() == "precious\n"
    text = err.value.one_line()
    assert "symbolic link" in text and "\n" not in text and err.value.exit_code == 2


def test_hard_link_lock_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    os.link(victim, lock_path("P", "prod", locks))
    with (
        pytest.raises(InputError, match="not a regular file of this user"),
        deploy_lock("P", "prod", 0.1, directory=locks),
    ):
        pass
    assert victim.read_text() == "precious\n"


def test_lock_dir_is_created_private_and_an_open_one_is_narrowed(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "locks"
    with deploy_lock("P", "prod", 0.1, directory=fresh) as path:
        assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with deploy_lock("P", "prod", 0.1, directory=shared):
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_lock_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    os.chown(theirs, 65534, 65534)
    with (
        pytest.raises(InputError, match="belongs to user id 65534"),
        deploy_lock("P", "prod", 0.1, directory=theirs),
    ):
        pass
    assert not any(theirs.iterdir())


def test_default_lock_dir_is_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLCD_LOCK_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert default_lock_dir() == Path(f"/tmp/mlcd-locks-{os.geteuid()}")
