"""Streaming bundle transfer: download with sha256 on the fly, upload as streaming multipart.

Neither direction holds the archive in memory: data moves in 1 MiB blocks. A
download goes to ``<dest>.part`` and is renamed only once complete (and its
length matches ``Content-Length`` when sent). It is not fsynced: a process kill
keeps the page cache, and after a power loss the sha256 that every later stage
checks against the run record catches a damaged archive, so durability would
only cost throughput. An upload body is an iterator
with a known total length, so requests sends ``Content-Length`` (not chunked).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from mlcd.dss.errors import DSSTransferIncomplete
from mlcd.dss.http import error_from_exception

BLOCK = 1024 * 1024

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Transfer:
    """A downloaded archive: where it is, its size in bytes and its sha256 (hex)."""

    path: Path
    size: int
    sha256: str


def receive_to_file(
    resp: requests.Response,
    dest: Path,
    *,
    node: str,
    operation: str,
    progress: Progress | None = None,
) -> Transfer:
    """Stream ``resp``'s body into ``dest`` (via ``dest.part``), hashing as it goes; closes ``resp``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    expected: int | None = None
    header = resp.headers.get("Content-Length")
    if header is not None and header.strip().isdigit():
        expected = int(header)
    digest = hashlib.sha256()
    done = 0
    try:
        with open(part, "wb", buffering=0) as out:
            try:
                for block in resp.iter_content(chunk_size=BLOCK):
                    if not block:
                        continue
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, expected)
            except requests.RequestException as exc:
                err = error_from_exception(exc, node, operation)
                raise DSSTransferIncomplete(
                    None,
                    None,
                    None,
                    f"download cut off after {done} bytes"
                    + (f" of {expected}" if expected is not None else "")
                    + f" ({err.dss_message})",
                    node,
                    operation,
                    transient=True,
                ) from None
            if expected is not None and done != expected:
                raise DSSTransferIncomplete(
                    None,
                    None,
                    None,
                    f"download cut off: got {done} bytes of {expected}",
                    node,
                    operation,
                    transient=True,
                )
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        resp.close()
    return Transfer(path=dest, size=done, sha256=digest.hexdigest())



class MultipartFile:
    """A ``multipart/form-data`` body with one file field, streamed from disk.

    Iterating yields the body in blocks of at most 1 MiB; ``len()`` is the exact
    total, so requests sends ``Content-Length``. Iterate it once per request.
    """

    def __init__(
        self,
        path: Path,
        field: str = "file",
        filename: str | None = None,
        content_type: str = "application/zip",
        progress: Progress | None = None,
    ) -> None:
        self.path = Path(path)
        self.boundary = "mlcd-" + secrets.token_hex(16)
        name = (filename or self.path.name).replace('"', "_").replace("\r", "_").replace("\n", "_")
        self._head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file_size = self.path.stat().st_size
        self.progress = progress

    @property
    def content_type(self) -> str:
        """The request's Content-Type header value."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self.file_size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        with open(self.path, "rb") as f:
            while True:
                block = f.read(BLOCK)
                if not block:
                    break
                sent += len(block)
                if self.progress is not None:
                    self.progress(sent, self.file_size)
                yield block
        if sent != self.file_size:
            raise OSError(f"{self.path} changed size while being uploaded")
        yield self._tail


def bundle_manifest(archive: Path) -> dict[str, object]:
    """The ``manifest.json`` of a bundle archive, or ``{}`` if it has none or is not a zip."""
    import json

    try:
        with zipfile.ZipFile(archive) as zf:
            for candidate in ("manifest.json", "export-manifest.json"):
                if candidate in zf.namelist():
                    data = json.loads(zf.read(candidate).decode("utf-8"))
                    return data if isinstance(data, dict) else {}
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError):
        return {}
    return {}
