"""The artifact repository: store bundle archives by HTTP PUT, verify them, fetch them back.

Layout (the shape of Artifactory generic and Nexus raw repositories)::

    <url>/<project>/<bundleId>/<bundleId>.zip     the archive (X-Checksum-Sha256/Sha1/Md5 headers)
    <url>/<project>/<bundleId>/<bundleId>.json    metadata: bundleId, sha256, size, gitSha, buildUrl...

Bodies are streamed in 1 MiB blocks with a known ``Content-Length``; checksums are
computed in one pass before the upload. Transient faults (connection errors,
429/5xx) are retried with tenacity: a PUT of the same bytes is idempotent.
Credentials come only from the environment variables the configuration names
(Basic auth, or a Bearer token) and never appear in messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from mlcd.config import ArtifactRepoConfig, read_secret
from mlcd.console import human_size
from mlcd.errors import ExitCode, InputError, MlcdError
from mlcd.redact import redact

BLOCK = 1024 * 1024
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
Progress = Callable[[int, int | None], None]


class ArtifactRepoError(MlcdError):
    """The artifact repository could not be reached, refused our credentials, or kept failing."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "artifact_repository"


class IntegrityError(InputError):
    """A stored or downloaded archive does not match its recorded sha256."""

    category = "integrity"


class _Transient(Exception):
    """A failure worth retrying (carries the final error to raise if retries run out)."""

    def __init__(self, error: MlcdError) -> None:
        super().__init__(error.one_line())
        self.error = error


@dataclass(frozen=True)
class Checksums:
    """Size and digests of a file, computed in one pass."""

    size: int
    sha256: str
    sha1: str
    md5: str


def checksums(path: Path) -> Checksums:
    """Size, sha256, sha1 and md5 of ``path`` in one streaming pass."""
    s256, s1, m5 = hashlib.sha256(), hashlib.sha1(), hashlib.md5()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            size += len(block)
            s256.update(block)
            s1.update(block)
            m5.update(block)
    return Checksums(size, s256.hexdigest(), s1.hexdigest(), m5.hexdigest())


class TransferProgress:
    """Progress lines for a transfer: at most one every ``interval`` seconds or 10 %, plus the last."""

    def __init__(self, emit: Callable[[str], None], label: str, interval: float = 3.0) -> None:
        self.emit = emit
        self.label = label
        self.interval = interval
        self._last_time = 0.0
        self._last_pct = -10.0
        self._started = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        pct = (100.0 * done / total) if total else None
        finished = total is not None and done >= total
        due = now - self._last_time >= self.interval or (pct is not None and pct - self._last_pct >= 10)
        if not (due or finished):
            return
        if finished and self._last_pct >= 100:
            return
        self._last_time = now
        if pct is not None:
            self._last_pct = pct
        size = human_size(done) + (f" of {human_size(total)} ({pct:.0f}%)" if total else "")
        elapsed = now - self._started
        rate = f", {human_size(int(done / elapsed))}/s" if elapsed >= 0.5 else ""  # too short to mean much
        self.emit(f"{self.label}: {size}{rate}")


class _FileBody:
    """A streaming request body with a known length (so requests sends Content-Length)."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.progress = progress

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        done = 0
        with open(self.path, "rb") as fh:
            while block := fh.read(BLOCK):
                done += len(block)
                if self.progress:
                    self.progress(done, self.size)
                yield block


class ArtifactRepository:
    """One artifact repository (``artifact_repository`` in mlcd.yaml) for one DSS project."""

    def __init__(
        self,
        config: ArtifactRepoConfig,
        project: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        max_attempts: int = 4,
        max_total_s: float = 120.0,
        initial_wait_s: float = 0.5,
    ) -> None:
        self.config = config
        self.project = project
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.max_total_s = max_total_s
        self.initial_wait_s = initial_wait_s
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "mlcd"
        if config.token_env:
            token = read_secret(config.token_env, "token of the artifact repository")
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif config.username_env and config.password_env:
            user = read_secret(config.username_env, "user name of the artifact repository")
            password = read_secret(config.password_env, "password of the artifact repository")
            self.session.auth = (user, password)

    # -- addresses ------------------------------------------------------------------------------------
    def _base(self, bundle_id: str) -> str:
        return f"{self.config.url}/{quote(self.project, safe='')}/{quote(bundle_id, safe='')}"

    def archive_url(self, bundle_id: str) -> str:
        """URL of a bundle's archive."""
        return f"{self._base(bundle_id)}/{quote(bundle_id, safe='')}.zip"

    def metadata_url(self, bundle_id: str) -> str:
        """URL of a bundle's metadata file."""
        return f"{self._base(bundle_id)}/{quote(bundle_id, safe='')}.json"

    # -- HTTP with retries ----------------------------------------------------------------------------
    def _retrying(self, operation: str) -> Retrying:
        return Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Transient)),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_total_s),
            wait=wait_exponential(multiplier=self.initial_wait_s, max=10.0)
            + wait_random(0, self.initial_wait_s),
            reraise=True,
        )

    def _request(self, method: str, url: str, operation: str, **kwargs: Any) -> requests.Response:
        """One attempt; raises _Transient for retryable failures, an MlcdError for final ones."""
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError:
            raise ArtifactRepoError(
                f"{operation}: TLS handshake with {self.config.url} failed",
                "check the repository's certificate (REQUESTS_CA_BUNDLE) and URL",
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
            raise _Transient(
                ArtifactRepoError(
                    f"{operation}: artifact repository {self.config.url} {kind}",
                    "check the URL in artifact_repository.url and that the repository is up",
                )
            ) from None
        if resp.status_code in (401, 403):
            resp.close()
            names = self.config.token_env or " and ".join(
                n for n in (self.config.username_env, self.config.password_env) if n
            )
            raise ArtifactRepoError(
                f"{operation}: artifact repository refused the credentials (HTTP {resp.status_code})",
                f"check {names}" if names else "set username_env/password_env or token_env in mlcd.yaml",
            )
        if resp.status_code in TRANSIENT_STATUS:
            resp.close()
            raise _Transient(
                ArtifactRepoError(
                    f"{operation}: artifact repository answered HTTP {resp.status_code} {resp.reason}",
                    "try again later or check the repository's health",
                )
            )
        return resp

    def _call(self, method: str, url: str, operation: str, **kwargs: Any) -> requests.Response:
        try:
            for attempt in self._retrying(operation):
                with attempt:
                    return self._request(method, url, operation, **kwargs)
        except _Transient as exc:
            raise exc.error from None
        raise AssertionError("unreachable")

    def _with_retries(self, operation: str, fn: Callable[[], Any]) -> Any:
        try:
            for attempt in self._retrying(operation):
                with attempt:
                    return fn()
        except _Transient as exc:
            raise exc.error from None
        raise AssertionError("unreachable")

    @staticmethod
    def _check(resp: requests.Response, operation: str, ok: tuple[int, ...] = (200, 201, 204)) -> None:
        if resp.status_code not in ok:
            status, reason = resp.status_code, resp.reason
            resp.close()
            raise ArtifactRepoError(
                f"{operation}: artifact repository answered HTTP {status} {redact(reason or '')}",
                "check the repository URL and that it accepts PUT (generic/raw repository)",
            )

    # -- operations -----------------------------------------------------------------------------------
    def get_metadata(self, bundle_id: str) -> dict[str, Any] | None:
        """The metadata of a published bundle, or None when it is not published."""
        op = f"read metadata of bundle {bundle_id}"
        resp = self._call("GET", self.metadata_url(bundle_id), op)
        if resp.status_code == 404:
            resp.close()
            return None
        self._check(resp, op, ok=(200,))
        try:
            data = resp.json()
        except ValueError:
            raise IntegrityError(
                f"metadata of bundle {bundle_id} in the artifact repository is not JSON",
                "publish the bundle again",
            ) from None
        finally:
            resp.close()
        if not isinstance(data, dict) or not data.get("sha256"):
            raise IntegrityError(
                f"metadata of bundle {bundle_id} in the artifact repository has no sha256",
                "publish the bundle again",
            )
        return data

    def put_archive(self, archive: Path, bundle_id: str, sums: Checksums, progress: Progress | None) -> str:
        """PUT the archive with checksum headers (retried on transient faults); returns its URL."""
        url = self.archive_url(bundle_id)
        op = f"upload bundle {bundle_id}"
        headers = {
            "Content-Type": "application/zip",
            "X-Checksum-Sha256": sums.sha256,
            "X-Checksum-Sha1": sums.sha1,
            "X-Checksum-Md5": sums.md5,
            "X-Checksum-Deploy": "false",
        }

        def attempt() -> None:
            resp = self._request("PUT", url, op, data=_FileBody(archive, progress), headers=headers)
            self._check(resp, op)
            resp.close()

        self._with_retries(op, attempt)
        return url

    def put_metadata(self, bundle_id: str, metadata: dict[str, Any]) -> str:
        """PUT the metadata JSON file; returns its URL."""
        url = self.metadata_url(bundle_id)
        op = f"upload metadata of bundle {bundle_id}"
        body = (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode()
        headers = {
            "Content-Type": "application/json",
            "X-Checksum-Sha256": hashlib.sha256(body).hexdigest(),
            "X-Checksum-Sha1": hashlib.sha1(body).hexdigest(),
            "X-Checksum-Md5": hashlib.md5(body).hexdigest(),
        }
        resp = self._call("PUT", url, op, data=body, headers=headers)
        self._check(resp, op)
        resp.close()
        return url

    def download(self, bundle_id: str, dest: Path, progress: Progress | None = None) -> tuple[int, str]:
        """Stream a published archive to ``dest`` (via ``dest.part``); returns (size, sha256)."""
        url = self.archive_url(bundle_id)
        op = f"download bundle {bundle_id}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> tuple[int, str]:
            resp = self._request("GET", url, op, stream=True, headers={"Accept-Encoding": "identity"})
            if resp.status_code == 404:
                resp.close()
                raise InputError(
                    f"bundle {bundle_id} of project {self.project} is not in the artifact repository",
                    "check the bundle id, or run `mlcd publish` for it first",
                )
            self._check(resp, op, ok=(200,))
            header = resp.headers.get("Content-Length", "")
            total = int(header) if header.isdigit() else None
            digest = hashlib.sha256()
            done = 0
            try:
                with open(part, "wb") as out:
                    for block in resp.iter_content(chunk_size=BLOCK):
                        if not block:
                            continue
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
                    out.flush()
                    os.fsync(out.fileno())
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, OSError) as exc:
                with contextlib.suppress(OSError):
                    part.unlink()
                if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
                    raise InputError(f"cannot write {dest}: {exc.strerror}", "check disk space") from None
                raise _Transient(ArtifactRepoError(f"{op}: the transfer was cut off", "try again")) from None
            finally:
                resp.close()
            if total is not None and done != total:
                with contextlib.suppress(OSError):
                    part.unlink()
                raise _Transient(ArtifactRepoError(f"{op}: got {done} of {total} bytes", "try again"))
            os.replace(part, dest)
            return done, digest.hexdigest()

        result: tuple[int, str] = self._with_retries(op, attempt)
        return result

    def remote_sha256(self, bundle_id: str) -> tuple[int, str]:
        """Read the stored archive back (streaming) and return its (size, sha256)."""
        url = self.archive_url(bundle_id)
        op = f"verify bundle {bundle_id} in the artifact repository"

        def attempt() -> tuple[int, str]:
            resp = self._request("GET", url, op, stream=True, headers={"Accept-Encoding": "identity"})
            if resp.status_code == 404:
                resp.close()
                raise IntegrityError(
                    f"bundle {bundle_id} is missing from the artifact repository after upload",
                    "check the repository (quota, retention rules) and publish again",
                )
            self._check(resp, op, ok=(200,))
            digest = hashlib.sha256()
            size = 0
            try:
                for block in resp.iter_content(chunk_size=BLOCK):
                    digest.update(block)
                    size += len(block)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                raise _Transient(ArtifactRepoError(f"{op}: read-back was cut off", "try again")) from None
            finally:
                resp.close()
            return size, digest.hexdigest()

        result: tuple[int, str] = self._with_retries(op, attempt)
        return result

    def close(self) -> None:
        """Release the HTTP session."""
        self.session.close()
