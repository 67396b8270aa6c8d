"""The artifact repository client against a small recording HTTP server on loopback.

The server stores PUT bodies, serves GET, records every request's headers and can
fail the first N requests with 503 or cut a download short, to show checksum
headers, streaming with Content-Length, retries and integrity checks as a user
would meet them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlcd.artifacts import ArtifactRepoError, ArtifactRepository, TransferProgress, checksums
from mlcd.config import ArtifactRepoConfig
from mlcd.errors import InputError


class Recorder:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next = 0
        self.truncate_next = 0


def make_handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _fail(self) -> bool:
            self.rec_request()
            if rec.fail_next > 0:
                rec.fail_next -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
            return False

        def rec_request(self) -> None:
            rec.requests.append((self.command, self.path, {k: v for k, v in self.headers.items()}))

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self._fail():
                return
            rec.files[self.path] = body
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            if self._fail():
                return
            body = rec.files.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if rec.truncate_next > 0:
                rec.truncate_next -= 1
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rec))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/repo", rec
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def repo_for(url: str, monkeypatch: pytest.MonkeyPatch, token: bool = False) -> ArtifactRepository:
    if token:
        monkeypatch.setenv("REPO_TOKEN", "tok-abcdef-123456")
        cfg = ArtifactRepoConfig(url=url, username_env=None, password_env=None, token_env="REPO_TOKEN")
    else:
        monkeypatch.setenv("REPO_USER", "ci")
        monkeypatch.setenv("REPO_PW", "pw-abcdef-123456")
        cfg = ArtifactRepoConfig(url=url, username_env="REPO_USER", password_env="REPO_PW", token_env=None)
    return ArtifactRepository(cfg, "P", initial_wait_s=0.01, max_total_s=20)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "B1.zip"
    path.write_bytes(bytes(range(256)) * 9000)  # ~2.3 MB: several streamed blocks
    return path


def test_put_sends_checksums_and_content_length(
    server: tuple[str, Recorder], archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rec = server
    repo = repo_for(url, monkeypatch)
    sums = checksums(archive)
    data = archive.read_bytes()
    assert sums.sha256 == hashlib.sha256(data).hexdigest()
    assert sums.md5 == hashlib.md5(data).hexdigest() and sums.size == len(data)
    seen: list[tuple[int, int | None]] = []
    repo.put_archive(archive, "B1", sums, progress=lambda d, t: seen.append((d, t)))
    method, path, headers = rec.requests[-1]
    assert (method, path) == ("PUT", "/repo/P/B1/B1.zip")
    assert headers["X-Checksum-Sha256"] == sums.sha256
    assert headers["X-Checksum-Sha1"] == hashlib.sha1(data).hexdigest()
    assert headers["X-Checksum-Md5"] == sums.md5
    assert headers["Content-Length"] == str(len(data)) and "Transfer-Encoding" not in headers
    assert headers["Authorization"].startswith("Basic ")
    assert rec.files["/repo/P/B1/B1.zip"] == data
    assert len(seen) > 1 and seen[-1] == (len(data), len(data))
    assert repo.remote_sha256("B1") == (len(data), sums.sha256)


def test_bearer_token(server: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    url, rec = server
    repo = repo_for(url, monkeypatch, token=True)
    repo.put_metadata("B1", {"bundleId": "B1", "sha256": "ab"})
    assert rec.requests[-1][2]["Authorization"] == "Bearer tok-abcdef-123456"
    assert repo.get_metadata("B1") == {"bundleId": "B1", "sha256": "ab"}
    assert repo.get_metadata("B2") is None


def test_transient_failures_are_retried(
    server: tuple[str, Recorder], archive: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, rec = server
    repo = repo_for(url, monkeypatch)
    rec.fail_next = 2
    repo.put_archive(archive, "B1", checksums(archive), progress=None)
    assert [r[0] for r in rec.requests] == ["PUT", "PUT", "PUT"]
    rec.truncate_next = 1
    size, sha = repo.download("B1", tmp_path / "out" / "B1.zip")
    assert sha == checksums(archive).sha256 and size == archive.stat().st_size
    assert (tmp_path / "out" / "B1.zip").read_bytes() == archive.read_bytes()
    assert not (tmp_path / "out" / "B1.zip.part").exists()


def test_persistent_failure_is_one_clear_error(
    server: tuple[str, Recorder], archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rec = server
    repo = repo_for(url, monkeypatch)
    rec.fail_next = 100
    with pytest.raises(ArtifactRepoError) as info:
        repo.put_archive(archive, "B1", checksums(archive), progress=None)
    assert "HTTP 503" in info.value.one_line() and "pw-abcdef-123456" not in info.value.one_line()
    assert len(rec.requests) == 4  # bounded attempts


def test_unreachable_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = repo_for("http://127.0.0.1:9/repo", monkeypatch)
    with pytest.raises(ArtifactRepoError, match="could not connect"):
        repo.get_metadata("B1")


def test_download_of_missing_bundle(
    server: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, _ = server
    with pytest.raises(InputError, match="not in the artifact repository"):
        repo_for(url, monkeypatch).download("NOPE", tmp_path / "x.zip")


def test_progress_is_throttled() -> None:
    lines: list[str] = []
    progress = TransferProgress(lines.append, "upload", interval=3600)
    total = 1000
    for done in range(0, total + 1, 10):
        progress(done, total)
    assert 10 <= len(lines) <= 12  # about every 10 %, plus the end
    assert lines[-1].startswith("upload:") and "(100%)" in lines[-1]


def test_download_stops_at_the_size_in_the_metadata(
    server: tuple[str, Recorder], archive: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, rec = server
    repo = repo_for(url, monkeypatch)
    repo.put_archive(archive, "B1", checksums(archive), progress=None)
    repo.put_metadata("B1", {"bundleId": "B1", "sha256": "ab", "size": 1000})
    fresh = repo_for(url, monkeypatch)
    assert fresh.get_metadata("B1") is not None  # remembers size 1000
    before = len(rec.requests)
    with pytest.raises(ArtifactRepoError, match="announces 2304000 bytes, but 1000 bytes were expected"):
        fresh.download("B1", tmp_path / "out" / "B1.zip")
    assert len(rec.requests) == before + 1  # refused, not retried
    assert not list((tmp_path / "out").glob("*"))


def test_read_back_hashes_without_writing(
    server: tuple[str, Recorder], archive: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, _ = server
    repo = repo_for(url, monkeypatch)
    sums = checksums(archive)
    repo.put_archive(archive, "B1", sums, progress=None)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert repo.remote_sha256("B1") == (sums.size, sums.sha256)
    assert list(cwd.iterdir()) == []
