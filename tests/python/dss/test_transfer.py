"""Streaming download (sha256, size, truncation) and streaming multipart upload."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from werkzeug.formparser import parse_form_data

from mlcd.dss.errors import DSSNotFound, DSSTransferIncomplete, DSSUnreachable
from mlcd.dss.http import RetryPolicy
from mlcd.dss.transfer import BLOCK, MultipartFile
from support.dssfakes import FakeClock, Reply, Seen, dss_error, make_node

ARCHIVE_PATH = "projects/CHURN/bundles/exported/b1/archive"


def payload(n: int) -> bytes:
    return os.urandom(n)


def test_download_computes_sha256_and_size_and_renames(clock: FakeClock, tmp_path: Path) -> None:
    data = payload(3 * BLOCK + 123)
    node, _ = make_node(lambda s: Reply(body=data, headers={"Content-Length": str(len(data))}), clock)
    seen_progress: list[tuple[int, int | None]] = []
    dest = tmp_path / "out" / "b1.zip"
    tr = node.download_bundle("CHURN", "b1", dest, progress=lambda d, t: seen_progress.append((d, t)))
    assert tr.path == dest and tr.size == len(data)
    assert tr.sha256 == hashlib.sha256(data).hexdigest()
    assert dest.read_bytes() == data
    assert not (tmp_path / "out" / "b1.zip.part").exists()
    assert seen_progress[-1] == (len(data), len(data))
    assert all(
        b - a <= BLOCK for (a, _), (b, _) in zip([(0, 0), *seen_progress], seen_progress, strict=False)
    )


def test_download_without_content_length(clock: FakeClock, tmp_path: Path) -> None:
    data = payload(5000)
    node, _ = make_node(lambda s: Reply(body=data), clock)
    tr = node.download_bundle("CHURN", "b1", tmp_path / "b1.zip")
    assert tr.size == 5000 and tr.sha256 == hashlib.sha256(data).hexdigest()


def test_short_body_is_detected_and_nothing_left_behind(clock: FakeClock, tmp_path: Path) -> None:
    data = payload(10_000)
    node, t = make_node(
        lambda s: Reply(body=data[:4096], headers={"Content-Length": str(len(data))}),
        clock,
        retry=RetryPolicy(max_attempts=2, max_total_s=10),
    )
    dest = tmp_path / "b1.zip"
    with pytest.raises(DSSTransferIncomplete) as info:
        node.download_bundle("CHURN", "b1", dest)
    assert info.value.transient is True
    assert "4096 bytes of 10000" in str(info.value)
    assert len(t.seen) == 2  # retried from scratch once (GET is idempotent)
    assert not dest.exists() and not (tmp_path / "b1.zip.part").exists()


def test_connection_cut_mid_stream_is_retried_from_scratch(clock: FakeClock, tmp_path: Path) -> None:
    data = payload(2 * BLOCK + 10)
    answers = [
        Reply(body=data, headers={"Content-Length": str(len(data))}, fail_after=BLOCK + 5),
        Reply(body=data, headers={"Content-Length": str(len(data))}),
    ]
    node, t = make_node(lambda s: answers.pop(0), clock)
    tr = node.download_bundle("CHURN", "b1", tmp_path / "b1.zip")
    assert len(t.seen) == 2
    assert tr.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "b1.zip").read_bytes() == data


def test_cut_download_error_is_typed(clock: FakeClock, tmp_path: Path) -> None:
    data = payload(100_000)
    node, _ = make_node(
        lambda s: Reply(body=data, fail_after=50_000),
        clock,
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(DSSTransferIncomplete, match="cut off after 50000 bytes"):
        node.download_bundle("CHURN", "b1", tmp_path / "b1.zip")


def test_missing_bundle_download_is_not_found(clock: FakeClock, tmp_path: Path) -> None:
    node, t = make_node(lambda s: dss_error(404, message="no bundle b1"), clock)
    with pytest.raises(DSSNotFound, match="download bundle b1 of project CHURN"):
        node.download_bundle("CHURN", "b1", tmp_path / "b1.zip")
    assert len(t.seen) == 1
    assert list(tmp_path.iterdir()) == []


def _parse_multipart(seen: Seen) -> tuple[dict[str, str], dict[str, tuple[str | None, bytes]]]:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": seen.headers["Content-Type"],
        "CONTENT_LENGTH": seen.headers["Content-Length"],
        "wsgi.input": io.BytesIO(seen.body),
    }
    _, form, files = parse_form_data(environ)
    return dict(form), {k: (f.filename, f.read()) for k, f in files.items()}


def test_upload_is_streaming_multipart_with_content_length(clock: FakeClock, tmp_path: Path) -> None:
    archive = tmp_path / "b9.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"bundleId": "b9", "projectKey": "CHURN"}))
        zf.writestr("project/data.bin", payload(3 * BLOCK))
    node, t = make_node(lambda s: Reply(200), clock)
    progress: list[tuple[int, int | None]] = []
    node.import_bundle("CHURN", archive, progress=lambda d, tot: progress.append((d, tot)))
    (seen,) = t.seen
    assert seen.path == "projects/CHURN/bundles/imported/actions/importFromStream"
    assert "Transfer-Encoding" not in seen.headers
    assert int(seen.headers["Content-Length"]) == len(seen.body)
    form, files = _parse_multipart(seen)
    assert form == {}
    assert list(files) == ["file"]
    filename, content = files["file"]
    assert filename == "b9.zip"
    assert content == archive.read_bytes()
    # streamed: the body arrived in pieces of at most 1 MiB, never as one blob
    assert max(seen.chunk_sizes) <= BLOCK and len(seen.chunk_sizes) >= 4
    size = archive.stat().st_size
    assert progress[-1] == (size, size)


def test_multipart_body_length_matches_iteration(tmp_path: Path) -> None:
    f = tmp_path / 'we"ird\nname.zip'
    f.write_bytes(b"x" * 10)
    body = MultipartFile(f)
    blob = b"".join(body)
    assert len(body) == len(blob)
    assert b'filename="we_ird_name.zip"' in blob
    assert blob.endswith(f"--{body.boundary}--\r\n".encode())


def test_download_without_length_stops_at_the_download_limit(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCD_MAX_DOWNLOAD_BYTES", "4096")
    node, t = make_node(lambda s: Reply(body=payload(3 * BLOCK)), clock)
    dest = tmp_path / "b1.zip"
    with pytest.raises(DSSUnreachable, match="goes past the 4096 bytes expected") as info:
        node.download_bundle("CHURN", "b1", dest)
    assert info.value.exit_code == 6 and len(t.seen) == 1  # refused, not retried
    assert not dest.exists() and not (tmp_path / "b1.zip.part").exists()


def test_compressed_download_is_refused(clock: FakeClock, tmp_path: Path) -> None:
    node, t = make_node(lambda s: Reply(body=b"x" * 100, headers={"Content-Encoding": "gzip"}), clock)
    with pytest.raises(DSSUnreachable, match="came compressed"):
        node.download_bundle("CHURN", "b1", tmp_path / "b1.zip")
    assert t.seen[0].headers["Accept-Encoding"] == "identity"
    assert not (tmp_path / "b1.zip.part").exists()
