"""Secret canaries: recognisable keys, and one scanner that looks for every form of them in outputs.

A canary is ``SECRET-mlcd-canary-`` + 24 random letters and digits (:func:`new_canary`).
Every canary issued in a process is remembered (and, when ``MLCD_CANARY_DIR`` is set,
appended to ``keys.txt`` there), so a session-level check can scan everything a test
suite left behind for all of them at once.

What :func:`needles` looks for, per secret (and per user name for HTTP Basic forms):

* the key itself and every 8-character window of it (a partial leak, e.g. a key cut
  before or after redaction);
* its URL-encoded forms (``quote`` and ``quote_plus``, also of ``user:key``);
* base64 (standard and URL-safe) of the key, of ``key:`` (Basic auth with the key as
  user name, as DSS does) and of ``user:key``, at each of the three alignments a
  string can have inside a longer base64 text.

:func:`scan_paths` returns a :class:`ScanReport` (files, bytes, needles, hits); the
reliability suite's session check and ``test_secrets`` both use it.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

PREFIX = "SECRET-mlcd-canary-"
WINDOW = 8
DIR_ENV = "MLCD_CANARY_DIR"  # where issued keys and captured outputs go (set by the reliability conftest)
KEYS_FILE = "keys.txt"
OUTPUTS_DIR = "outputs"
ISSUED: list[str] = []
# test inputs that hold a secret on purpose, not outputs: a config with a literal key (a bad-input
# case) and the artifact repository's own password file
INPUT_NAMES = frozenset({"mlcd.yaml", "htpasswd"})
_ALPHABET = string.ascii_letters + string.digits


def new_canary() -> str:
    """A fresh canary key, remembered for the session scan."""
    return remember(PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(24)))


def remember(key: str) -> str:
    """Add a secret (a canary, or a test's own key) to those the session scan looks for; return it."""
    ISSUED.append(key)
    where = os.environ.get(DIR_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        with (Path(where) / KEYS_FILE).open("a", encoding="utf-8") as fh:
            fh.write(key + "\n")
    return key


def issued_keys(directory: Path | None = None) -> list[str]:
    """Every canary issued in this process and (from ``keys.txt``) by any other."""
    keys = list(ISSUED)
    if directory is not None and (directory / KEYS_FILE).is_file():
        keys += (directory / KEYS_FILE).read_text(encoding="utf-8").split()
    return sorted(set(keys))


def capture(label: str, *texts: str | bytes | None) -> None:
    """Keep what a subprocess printed (under ``$MLCD_CANARY_DIR/outputs``) for the session scan."""
    where = os.environ.get(DIR_ENV)
    if not where:
        return
    out = Path(where) / OUTPUTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{os.getpid()}.log").open("ab") as fh:
        fh.write(f"\n--- {label}\n".encode())
        for text in texts:
            fh.write(text.encode("utf-8", "replace") if isinstance(text, str) else (text or b""))


def _b64_forms(plain: str) -> set[str]:
    """Base64 of ``plain`` at each alignment, without the characters its neighbours would change."""
    forms: set[str] = set()
    data = plain.encode()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + data).decode()
            start = 4 if pad else 0  # the first quantum mixes in the padding bytes
            end = len(text) - (4 if (pad + len(data)) % 3 else 0)  # the last one, the next bytes
            if end - start >= WINDOW:
                forms.add(text[start:end])
    return forms


def needles(secret: str, users: Iterable[str] = ()) -> dict[str, str]:
    """Every form of ``secret`` to look for (see the module docstring) -> what it is (no secret in it)."""
    found = {
        secret[i : i + WINDOW]: f"characters {i}-{i + WINDOW - 1}" for i in range(len(secret) - WINDOW + 1)
    }
    basic = [("key", secret), ("key:", f"{secret}:"), *((f"{u}:key", f"{u}:{secret}") for u in users)]
    for name, plain in basic:
        found.update({quote(plain, safe=""): f"URL-encoded {name}", quote_plus(plain): f"URL-encoded {name}"})
        found.update({form: f"base64 of {name}" for form in _b64_forms(plain)})
    found[secret] = "the whole key"
    return {n: kind for n, kind in found.items() if len(n) >= WINDOW}


@dataclass
class ScanReport:
    """What a scan looked at and what it found (``hits``: one line per file or text with a canary)."""

    files: int = 0
    bytes: int = 0
    needles: int = 0
    hits: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The numbers for the reliability summary."""
        return {"files": self.files, "bytes": self.bytes, "needles": self.needles, "hits": len(self.hits)}


def find(data: bytes, wanted: set[bytes]) -> list[bytes]:
    """The needles of ``wanted`` in ``data`` (all needles are at least ``WINDOW`` bytes long)."""
    if not wanted:
        return []
    heads = {n[:WINDOW] for n in wanted}
    starts = {i for i in range(len(data) - WINDOW + 1) if data[i : i + WINDOW] in heads}
    return sorted({n for n in wanted for i in starts if data.startswith(n, i)})


def scan_texts(texts: Iterable[tuple[str, str | bytes]], secrets_: Iterable[str], users: Iterable[str] = (),
               report: ScanReport | None = None) -> ScanReport:  # fmt: skip
    """Scan ``(label, text)`` pairs for every form of every secret."""
    report = report or ScanReport()
    users = list(users)
    what: dict[bytes, str] = {}
    for number, secret in enumerate(secrets_, 1):
        what.update({n.encode(): f"key #{number}: {kind}" for n, kind in needles(secret, users).items()})
    wanted = set(what)
    report.needles = max(report.needles, len(wanted))
    for label, text in texts:
        data = text.encode("utf-8", "replace") if isinstance(text, str) else text
        report.files += 1
        report.bytes += len(data)
        found = find(data, wanted)
        if found:  # one hit per text or file, naming the forms (never showing them: the report is an output)
            kinds = sorted({what[n] for n in found})
            report.hits.append(f"{label}: {len(found)} forms: {'; '.join(kinds[:6])}")
    return report


def output_files(
    roots: Iterable[Path], skip: Iterable[Path] = (), inputs: Iterable[str] = INPUT_NAMES
) -> list[Path]:
    """Every file under ``roots``, except under a stand-in node's data dir (it holds ``node.json``),
    test inputs (:data:`INPUT_NAMES`) and the paths in ``skip`` (e.g. the key list itself)."""
    skipped = {p.resolve() for p in skip}
    input_names = set(inputs)
    out: list[Path] = []
    for root in roots:
        if not root.exists():
            continue
        node_dirs = {p.parent for p in root.rglob("node.json")}
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.is_symlink() or path.name in input_names:
                continue
            if path.resolve() in skipped:
                continue
            if any(path.is_relative_to(d) for d in node_dirs):
                continue
            out.append(path)
    return out


def scan_paths(paths: Iterable[Path], secrets_: Iterable[str], users: Iterable[str] = ()) -> ScanReport:
    """Scan files for every form of every secret."""
    return scan_texts(((str(p), p.read_bytes()) for p in paths), secrets_, users)
