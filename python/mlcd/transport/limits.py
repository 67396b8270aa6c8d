"""How much mlcd accepts from a server: body sizes, zip members, wall-clock deadlines.

Every limit has a documented default and an environment variable to change it
(see docs/security.md, "Network inputs"). Values are read when a client is made,
so a test or a site can lower or raise them without a configuration change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlcd.errors import ConfigError

MIB = 1024 * 1024
GIB = 1024 * MIB

# environment variable -> (field, default, minimum)
_ENV = {
    "MLCD_MAX_JSON_BYTES": ("max_json_bytes", 64 * MIB, 1024),
    "MLCD_MAX_DOWNLOAD_BYTES": ("max_download_bytes", 20 * GIB, 1024),
    "MLCD_REQUEST_DEADLINE_S": ("request_deadline_s", 300, 1),
    "MLCD_MIN_DOWNLOAD_RATE": ("min_download_rate", 256 * 1024, 1),
    "MLCD_MAX_ZIP_MEMBERS": ("max_zip_members", 200_000, 1),
    "MLCD_MAX_ZIP_MEMBER_BYTES": ("max_zip_member_bytes", 64 * MIB, 1024),
}


_UNITS = {"_s": "seconds", "te": "bytes per second"}


@dataclass(frozen=True)
class Limits:
    """Bounds on what a server may send.

    ``max_json_bytes``: one JSON (or error) body, after decompression.
    ``max_download_bytes``: a download whose size nobody announced.
    ``request_deadline_s``: wall-clock seconds from sending a request to the end of its answer.
    ``min_download_rate``: bytes/s a download must average on top of that deadline.
    ``max_zip_members`` / ``max_zip_member_bytes``: entries of an archive, and the
    uncompressed size of one entry mlcd reads into memory (manifest, scenarios).
    """

    max_json_bytes: int = 64 * MIB
    max_download_bytes: int = 20 * GIB
    request_deadline_s: float = 300.0
    min_download_rate: int = 256 * 1024
    max_zip_members: int = 200_000
    max_zip_member_bytes: int = 64 * MIB

    def download_deadline_s(self, size: int | None) -> float:
        """Wall-clock seconds allowed for a download of ``size`` bytes (unknown: the size cap)."""
        total = self.max_download_bytes if size is None else size
        return self.request_deadline_s + total / self.min_download_rate

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """The defaults, with any ``MLCD_MAX_*``/``MLCD_*_DEADLINE_S`` variable applied."""
        env = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for var, (field, _default, minimum) in _ENV.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                value = float(raw) if field.endswith("_s") else int(raw)
            except ValueError:
                value = -1
            if value < minimum:
                raise ConfigError(
                    f"environment variable {var}={raw!r} is not a number >= {minimum}",
                    f"set {var} to a number of {_UNITS.get(field[-2:], 'bytes')} or unset it",
                )
            values[field] = value
        return cls(**values)  # type: ignore[arg-type]
