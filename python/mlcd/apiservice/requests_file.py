"""The labelled request file of the correctness gate: JSON lines of ``{"features": {...}, "expected": v}``.

Read whole and checked before anything changes: a malformed line is refused with its
line number (exit 2). Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcd.errors import InputError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LabelledRequest:
    """One request and the answer it must get; ``line`` is its line number in the file."""

    line: int
    features: dict[str, Any]
    expected: Any


def read_requests(path: Path) -> list[LabelledRequest]:
    """Every request of ``path``; InputError naming the file and line of the first bad one."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"request file {path} is {size} bytes, more than {MAX_FILE_BYTES}",
                "keep the labelled requests under 64 MiB (a sample is enough)",
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"request file {path} does not exist",
            "commit the labelled requests and name them in gates.correctness.requests",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read request file {path}: {reason}", "check the path") from None
    out = [r for n, line in enumerate(text.splitlines(), start=1) if (r := _line(path, n, line))]
    if not out:
        raise InputError(
            f"request file {path} has no requests", 'add JSON lines {"features": ..., "expected": ...}'
        )
    return out


def _line(path: Path, number: int, line: str) -> LabelledRequest | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    fix = 'each line must be a JSON object {"features": {...}, "expected": value}'
    if len(stripped) > MAX_LINE_BYTES:
        raise InputError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes", fix)
    try:
        obj = json.loads(stripped)
    except ValueError as exc:
        raise InputError(f"{path}:{number}: not JSON ({str(exc).split(':')[0]})", fix) from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}:{number}: not a JSON object", fix)
    if not isinstance(obj.get("features"), dict):
        raise InputError(f"{path}:{number}: 'features' is missing or not an object", fix)
    if "expected" not in obj:
        raise InputError(f"{path}:{number}: 'expected' is missing", fix)
    return LabelledRequest(number, obj["features"], obj["expected"])
