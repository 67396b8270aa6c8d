"""Reading answers within bounds: capped bodies, and one streaming download that hashes as it writes.

Both raise :class:`BodyError` subclasses that name what happened in plain words;
each client turns them into its own typed error (a DSS error, an artifact
repository error) with the exit code the docs give.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import requests

from mlcd.transport.limits import Limits
from mlcd.transport.session import Deadline

BLOCK = 1024 * 1024
READ_CHUNK = 64 * 1024

Progress = Callable[[int, int | None], None]


class BodyError(Exception):
    """An answer mlcd will not accept; ``transient`` says whether asking again may help."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooLarge(BodyError):
    """The answer is (or announces to be) larger than allowed."""


class DeadlineExceeded(BodyError):
    """The answer was not complete within its wall-clock deadline."""


class CutOff(BodyError):
    """The transfer ended before its announced length, or the connection broke."""

    transient = True


class UnwantedEncoding(BodyError):
    """A download came compressed although ``Accept-Encoding: identity`` was asked."""


@dataclass(frozen=True)
class Received:
    """A downloaded file: where it is, its size in bytes and its sha256 (hex)."""

    path: Path
    size: int
    sha256: str


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _content_length(resp: requests.Response) -> int | None:
    header = (resp.headers.get("Content-Length") or "").strip()
    return int(header) if header.isdigit() else None


def _deadline_error(deadline: Deadline) -> DeadlineExceeded:
    return DeadlineExceeded(f"no complete answer within the {deadline.seconds:.0f} s deadline")


def _refuse_encoding(resp: requests.Response) -> None:
    encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise UnwantedEncoding(
            f"the answer came compressed (Content-Encoding {encoding[:20]}) although identity was asked"
        )


def read_capped(resp: requests.Response, limit: int, deadline: Deadline | None = None) -> bytes:
    """The whole body of ``resp``, refusing more than ``limit`` bytes or any compression; closes ``resp``.

    Compressed answers are refused before a byte is read: mlcd asks for
    ``identity``, and inflating what a server chose to compress is how a small
    answer becomes gigabytes in memory.
    """
    try:
        _refuse_encoding(resp)
        announced = _content_length(resp)
        if announced is not None and announced > limit:
            raise TooLarge(f"the answer announces {_mib(announced)}, more than the {_mib(limit)} allowed")
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(chunk_size=READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the answer is larger than the {_mib(limit)} allowed")
                parts.append(chunk)
        except requests.RequestException:
            if deadline is not None and deadline.expired:
                raise _deadline_error(deadline) from None
            raise
        if deadline is not None and deadline.expired:
            raise _deadline_error(deadline)
        return b"".join(parts)
    finally:
        resp.close()


def _cap(expected: int | None, announced: int | None, fallback: int) -> int:
    if expected is not None and announced is not None and announced > expected:
        raise TooLarge(f"the server announces {announced} bytes, but {expected} bytes were expected")
    if expected is not None:
        return expected
    return announced if announced is not None else fallback


def _copy(
    resp: requests.Response,
    out: BinaryIO,
    cap: int,
    total: int | None,
    deadline: Deadline | None,
    progress: Progress | None,
) -> tuple[int, str]:
    """Copy the body to ``out`` in blocks, hashing; the first byte over ``cap`` aborts."""
    digest = hashlib.sha256()
    done = 0
    try:
        for block in resp.iter_content(chunk_size=BLOCK):
            if done + len(block) > cap:
                raise TooLarge(f"the download goes past the {cap} bytes expected")
            out.write(block)
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    except requests.RequestException:
        if deadline is not None and deadline.expired:
            raise _deadline_error(deadline) from None
        of = f" of {total}" if total is not None else ""
        raise CutOff(f"the download was cut off after {done} bytes{of}") from None
    if deadline is not None and deadline.expired:
        raise _deadline_error(deadline)
    return done, digest.hexdigest()


def receive_to_file(
    resp: requests.Response,
    dest: Path | None,
    *,
    limits: Limits,
    expected: int | None = None,
    deadline: Deadline | None = None,
    progress: Progress | None = None,
) -> Received:
    """Stream ``resp``'s body into ``dest`` via ``dest.part``, hashing as it goes; closes ``resp``.

    With ``dest`` None the body is only hashed (a read-back check).
    The size allowed is ``expected`` (from metadata), else ``Content-Length``, else
    ``limits.max_download_bytes``: the first byte over it aborts the transfer and
    deletes the ``.part``. A body shorter than ``Content-Length`` raises
    :class:`CutOff`. Once the size is known, ``deadline`` becomes
    ``limits.download_deadline_s(size)``.
    """
    part = None if dest is None else dest.with_name(dest.name + ".part")
    try:
        _refuse_encoding(resp)
        announced = _content_length(resp)
        cap = _cap(expected, announced, limits.max_download_bytes)
        if deadline is not None:
            deadline.extend(limits.download_deadline_s(cap))
        if part is not None:
            part.parent.mkdir(parents=True, exist_ok=True)
        with open(part or os.devnull, "wb", buffering=0) as out:
            total = announced if announced is not None else expected
            done, sha256 = _copy(resp, out, cap, total, deadline, progress)
        if announced is not None and done != announced:
            raise CutOff(f"the download was cut off: got {done} bytes of {announced}")
        if part is not None and dest is not None:
            os.replace(part, dest)
    except BaseException:
        if part is not None:
            part.unlink(missing_ok=True)
        raise
    finally:
        resp.close()
        if deadline is not None:
            deadline.close()
    return Received(path=dest or Path(os.devnull), size=done, sha256=sha256)
