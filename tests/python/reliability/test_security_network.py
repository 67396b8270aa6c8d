"""Security: a hostile node or repository cannot exhaust memory, disk or time (issue 12, item 7 and 9).

Each test starts a tiny hostile server on loopback that reproduces one attack,
runs the real ``mlcd`` against it and checks the bounded failure a user sees: one
line on stderr, the documented exit code (6: node or network problem, 2: bad
input), memory bounded, nothing left half-written.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import DESIGN_KEY, REPO_TOKEN, TEST_KEY, Handler, hostile, run_mlcd, write_config

from mlcd.bounded_zip import ArchiveTooLarge, open_bounded_zip
from mlcd.dss.transfer import bundle_manifest
from mlcd.errors import ConfigError
from mlcd.transport.limits import MIB, Limits
from support.canary import new_canary
from support.reltools import one_line_error, record_result

KEYS = {DESIGN_KEY: new_canary(), TEST_KEY: new_canary(), REPO_TOKEN: new_canary()}
BOMB_MIB = 100


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 100 KB of gzip that inflates to 100 MiB."""
    return gzip.compress(b"0" * (BOMB_MIB * MIB), compresslevel=9)


def _bomb(bomb: bytes) -> Callable[[Handler], None]:
    return lambda h: h.send(200, bomb, Content_Encoding="gzip")


def _announced_huge(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(10 * 1024 * MIB))
    h.end_headers()
    h.wfile.write(b"[" + b"0," * 100_000)


@pytest.mark.parametrize("attack", ["gzip-bomb", "announced-10GiB"])
def test_oversized_json_answer_is_refused_with_bounded_memory(
    tmp_path: Path, gzip_bomb: bytes, attack: str
) -> None:
    respond = _bomb(gzip_bomb) if attack == "gzip-bomb" else _announced_huge
    with hostile(respond) as server:
        write_config(tmp_path, server.url)
        run = run_mlcd(tmp_path, "validate", keys=KEYS, env={"MLCD_MAX_JSON_BYTES": str(8 * MIB)})
    line = one_line_error(run.stderr)
    assert run.code == 6, run
    assert line.startswith("mlcd validate: error:"), line
    expected = "came compressed (Content-Encoding gzip)" if attack == "gzip-bomb" else "8.0 MiB allowed"
    assert expected in line, line
    assert run.max_rss_mib < 120, f"peak memory {run.max_rss_mib:.0f} MiB"
    record_result("security_network", case=f"json-{attack}", passed=True)


def _drip_headers(h: Handler) -> None:
    h.drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 1.5)


def _drip_body(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    h.drip(b'{"pad": "' + b"x" * 990 + b'"}', 1.5)


@pytest.mark.parametrize("where", ["headers", "body"])
def test_drip_fed_answer_ends_at_the_wall_clock_deadline(tmp_path: Path, where: str) -> None:
    """One byte every 1.5 s never trips a 30 s read timeout; the 3 s deadline ends it."""
    with hostile(_drip_headers if where == "headers" else _drip_body) as server:
        write_config(tmp_path, server.url)
        run = run_mlcd(tmp_path, "validate", keys=KEYS, env={"MLCD_REQUEST_DEADLINE_S": "3"}, timeout=40)
    line = one_line_error(run.stderr)
    assert run.code == 6, run
    assert "no complete answer within the 3 s deadline" in line, line
    assert run.seconds < 20, f"took {run.seconds:.1f} s"
    record_result("security_network", case=f"drip-{where}", passed=True)


def test_drip_fed_repository_ends_at_the_wall_clock_deadline(tmp_path: Path) -> None:
    with hostile(_drip_body) as server:
        write_config(tmp_path, server.url, repo=server.url + "/repo")
        run = run_mlcd(tmp_path, "fetch", "--bundle-id", "B1", keys=KEYS,
                       env={"MLCD_REQUEST_DEADLINE_S": "3"}, timeout=40)  # fmt: skip
    line = one_line_error(run.stderr)
    assert run.code == 6, run
    assert "no complete answer within the 3 s deadline" in line, line
    assert run.seconds < 20, f"took {run.seconds:.1f} s"
    record_result("security_network", case="drip-repository", passed=True)


def test_endless_download_stops_at_the_size_in_the_metadata(tmp_path: Path) -> None:
    """The repository says 1000 bytes, then streams without end: the first byte over aborts."""
    sent = [0]

    def respond(h: Handler) -> None:
        if h.path.endswith(".json"):
            meta = {"bundleId": "B1", "project": "P", "sha256": "0" * 64, "size": 1000}
            h.send(200, json.dumps(meta).encode())
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/zip")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        block = b"z" * 65536
        while sent[0] < 64 * MIB and not h.server.stopping.is_set():
            h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            sent[0] += len(block)
        h.wfile.write(b"0\r\n\r\n")

    with hostile(respond) as server:
        write_config(tmp_path, server.url, repo=server.url + "/repo")
        # pinned, so provenance passes and the download itself is what is bounded
        run = run_mlcd(tmp_path, "fetch", "--bundle-id", "B1", "--sha256", "0" * 64, keys=KEYS)
    line = one_line_error(run.stderr)
    assert run.code == 6, run
    assert "goes past the 1000 bytes expected" in line, line
    assert not list((tmp_path / ".mlcd").rglob("*.part")) and not list((tmp_path / ".mlcd").rglob("B1.zip"))
    assert sent[0] < 16 * MIB, f"the server could push {sent[0]} bytes"
    record_result("security_network", case="download-over-size", passed=True)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_member_larger_than_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    """A 100 KB archive whose manifest.json inflates to 100 MiB: refused from the directory alone."""
    manifest = b'{"bundleId": "B", "projectKey": "P", "pad": "' + b"0" * (BOMB_MIB * MIB) + b'"}'
    bomb = _zip(tmp_path / "bomb.zip", {"manifest.json": manifest})
    assert bomb.stat().st_size < 1 * MIB
    del manifest
    with pytest.raises(ArchiveTooLarge) as info:
        bundle_manifest(bomb)
    assert "mlcd reads at most 67108864 bytes of one member" in info.value.one_line()
    assert info.value.exit_code == 2
    record_result("security_network", case="zip-member-size", passed=True)


def test_zip_member_that_lies_about_its_size_is_not_read_past_it(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", {"manifest.json": b"{" + b" " * 5000 + b"}"})
    with open_bounded_zip(archive, Limits(max_zip_member_bytes=1024)) as zf:
        zf._zf.getinfo("manifest.json").file_size = 100  # the central directory lies
        with pytest.raises(zipfile.BadZipFile):  # zipfile stops at the declared size: CRC mismatch
            zf.read("manifest.json")


def test_zip_with_too_many_members_is_refused_before_parsing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(50)})
    too_many = pytest.raises(ArchiveTooLarge, match="has 50 members; mlcd reads archives of at most 10")
    with too_many, open_bounded_zip(archive, Limits(max_zip_members=10)):
        pass
    record_result("security_network", case="zip-member-count", passed=True)


def test_deploy_reads_bundle_archives_within_the_zip_limits(tmp_path: Path) -> None:
    from mlcd.release.archive import read_bundle

    archive = _zip(tmp_path / "b.zip", {"manifest.json": b'{"bundleId": "B", "pad": "' + b"0" * 4096 + b'"}'})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLCD_MAX_ZIP_MEMBER_BYTES", "1024")
        with pytest.raises(ArchiveTooLarge):
            read_bundle(archive)


def test_plain_http_is_refused_without_the_opt_in_and_warned_with_it(tmp_path: Path) -> None:
    with hostile(lambda h: h.send(200, b'{"authIdentifier": "x"}')) as server:
        config = write_config(tmp_path, server.url)
        config.write_text(config.read_text().replace("allow_insecure_http: true\n", ""))
        refused = run_mlcd(tmp_path, "validate", keys=KEYS)
        assert server.requests == []
        write_config(tmp_path, server.url)
        allowed = run_mlcd(tmp_path, "validate", keys=KEYS)
    line = one_line_error(refused.stderr)
    assert refused.code == 2
    assert "design.url is a plain http:// URL" in line and "allow_insecure_http: true" in line, line
    assert "DSS node design uses plain http://" in allowed.stdout, allowed.stdout
    record_result("security_network", case="plain-http", passed=True)


def test_limits_come_from_the_environment_and_bad_values_are_one_clear_error() -> None:
    limits = Limits.from_env({"MLCD_MAX_JSON_BYTES": "2048", "MLCD_REQUEST_DEADLINE_S": "2.5"})
    assert limits.max_json_bytes == 2048 and limits.request_deadline_s == 2.5
    assert Limits.from_env({}) == Limits()
    for bad in ("abc", "0", "-5"):
        with pytest.raises(ConfigError) as info:
            Limits.from_env({"MLCD_MIN_DOWNLOAD_RATE": bad})
        assert info.value.exit_code == 2
        assert info.value.one_line().endswith(
            "(fix: set MLCD_MIN_DOWNLOAD_RATE to a number of bytes per second or unset it)"
        )
