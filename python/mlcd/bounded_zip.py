"""Read bundle archives within bounds: member count and member size are checked before reading.

A zip's central directory says how many members it has and how large each one is
uncompressed; both are checked before any member is read, and a member is read
with a hard cap in case the directory lies. A hostile archive (a small zip holding
a huge ``manifest.json``, or millions of entries) is refused with one line, exit 2.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlcd.errors import InputError
from mlcd.transport.limits import Limits


class ArchiveTooLarge(InputError):
    """An archive has more members, or a larger member, than mlcd reads."""

    category = "archive_limits"


class BoundedZip:
    """An open zip whose members are read only within ``limits``."""

    def __init__(self, zf: zipfile.ZipFile, path: Path, limits: Limits) -> None:
        self._zf = zf
        self.path = path
        self.limits = limits

    def namelist(self) -> list[str]:
        """Names of every member."""
        return self._zf.namelist()

    def read(self, name: str) -> bytes:
        """The uncompressed bytes of member ``name`` (KeyError if absent), at most the member cap."""
        info = self._zf.getinfo(name)
        cap = self.limits.max_zip_member_bytes
        if info.file_size > cap:
            raise _too_large(self.path, name, f"{info.file_size} bytes uncompressed", cap)
        with self._zf.open(info) as member:
            data = member.read(cap + 1)
        if len(data) > cap:
            raise _too_large(self.path, name, "more than its declared size", cap)
        return data


def _too_large(path: Path, name: str, what: str, cap: int) -> ArchiveTooLarge:
    return ArchiveTooLarge(
        f"archive {path} member {name[:100]!r} is {what}; mlcd reads at most {cap} bytes of one member",
        "use an archive exported by DSS (or raise MLCD_MAX_ZIP_MEMBER_BYTES if it is genuine)",
    )


def declared_members(path: Path) -> int | None:
    """The member count the end-of-central-directory record declares (None if it has none)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - (65536 + 22)))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    count: int = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack("<Q", tail[locator + 8 : locator + 16])
        with open(path, "rb") as fh:
            fh.seek(offset)
            record = fh.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            count = struct.unpack("<Q", record[32:40])[0]
    return count


@contextmanager
def open_bounded_zip(path: Path, limits: Limits | None = None) -> Iterator[BoundedZip]:
    """Open ``path`` as a zip after checking its member count (zipfile errors pass through)."""
    limits = limits or Limits.from_env()
    declared = declared_members(Path(path))
    if declared is not None and declared > limits.max_zip_members:
        raise _too_many(Path(path), declared, limits)
    with zipfile.ZipFile(path) as zf:
        count = len(zf.infolist())
        if count > limits.max_zip_members:
            raise _too_many(Path(path), count, limits)
        yield BoundedZip(zf, Path(path), limits)


def _too_many(path: Path, count: int, limits: Limits) -> ArchiveTooLarge:
    return ArchiveTooLarge(
        f"archive {path} has {count} members; mlcd reads archives of at most {limits.max_zip_members}",
        "use an archive exported by DSS (or raise MLCD_MAX_ZIP_MEMBERS if it is genuine)",
    )
