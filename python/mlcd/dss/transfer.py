"""Streaming bundle transfer: download with sha256 on the fly, upload as streaming multipart.

Neither direction holds the archive in memory: data moves in 1 MiB blocks. A
download is the shared :func:`mlcd.transport.bodies.receive_to_file`: it goes to
``<dest>.part``, is capped at its ``Content-Length`` (or the download limit when
none is sent), must finish within its wall-clock deadline, and is renamed only
once complete. It is not fsynced: a process kill keeps the page cache, and after
a power loss the sha256 that every later stage checks against the run record
catches a damaged archive, so durability would only cost throughput. An upload
body is an iterator with a known total length, so requests sends
``Content-Length`` (not chunked).
"""

from __future__ import annotations

import json
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path

import requests

from mlcd.bounded_zip import ArchiveTooLarge, open_bounded_zip
from mlcd.dss.errors import DSSTransferIncomplete, DSSUnreachable
from mlcd.transport import bodies
from mlcd.transport.bodies import BLOCK, Progress
from mlcd.transport.bodies import Received as Transfer
from mlcd.transport.limits import Limits
from mlcd.transport.session import deadline_of

__all__ = ["BLOCK", "MultipartFile", "Progress", "Transfer", "bundle_manifest", "receive_to_file"]


def receive_to_file(
    resp: requests.Response,
    dest: Path,
    *,
    node: str,
    operation: str,
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> Transfer:
    """Stream ``resp``'s body into ``dest`` (via ``dest.part``), hashing as it goes; closes ``resp``.

    A cut-off transfer is a transient :class:`DSSTransferIncomplete`; an answer over
    its size, past its deadline or compressed is a :class:`DSSUnreachable` (exit 6).
    """
    try:
        return bodies.receive_to_file(
            resp,
            Path(dest),
            limits=limits or Limits.from_env(),
            deadline=deadline_of(resp),
            progress=progress,
        )
    except bodies.CutOff as exc:
        raise DSSTransferIncomplete(None, None, None, exc.message, node, operation, transient=True) from None
    except bodies.BodyError as exc:
        raise DSSUnreachable(
            None, None, None, f"refused the download: {exc.message}", node, operation,
            hint="check the node URL in mlcd.yaml; raise the limit (docs/security.md) if it is genuine",
        ) from None  # fmt: skip


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
    """The ``manifest.json`` of a bundle archive, or ``{}`` if it has none or is not a zip.

    Read within the archive limits (:mod:`mlcd.bounded_zip`); an archive over them is refused.
    """
    try:
        with open_bounded_zip(archive) as zf:
            for candidate in ("manifest.json", "export-manifest.json"):
                if candidate in zf.namelist():
                    data = json.loads(zf.read(candidate).decode("utf-8"))
                    return data if isinstance(data, dict) else {}
    except ArchiveTooLarge:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError):
        return {}
    return {}
