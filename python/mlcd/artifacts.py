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

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from mlcd.config import ArtifactRepoConfig, read_secret
from mlcd.console import human_size
from mlcd.errors import ExitCode, InputError, MlcdError
from mlcd.redact import clip
from mlcd.transport import bodies
from mlcd.transport.bodies import BLOCK, Progress
from mlcd.transport.limits import Limits
from mlcd.transport.retry import TRANSIENT_STATUSES, RetryPolicy, call_with_retries
from mlcd.transport.session import Deadline, make_session, warn_if_insecure

T = TypeVar("T")


class ArtifactRepoError(MlcdError):
    """The artifact repository could not be reached, refused our credentials, or kept failing."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "artifact_repository"

    def __init__(self, message: str, hint: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message, hint)
        self.transient = transient


class IntegrityError(InputError):
    """A stored or downloaded archive does not match its recorded sha256."""

    category = "integrity"


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


_LIMIT_HINT = "check artifact_repository.url; raise the limit (docs/security.md) if the answer is genuine"


class ArtifactRepository:
    """One artifact repository (``artifact_repository`` in mlcd.yaml) for one DSS project.

    Requests go through the shared HTTP layer (:mod:`mlcd.transport`): its session,
    retry policy (a PUT of the same bytes is idempotent), deadline and bounds.
    """

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
        limits: Limits | None = None,
    ) -> None:
        self.config = config
        self.project = project
        self.timeout = (connect_timeout, read_timeout)
        self.retry = RetryPolicy(max_attempts=max_attempts, max_total_s=max_total_s, initial_s=initial_wait_s)
        self.limits = limits or Limits.from_env()
        self._sizes: dict[str, int] = {}  # bundle id -> size from metadata read or archive written
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if config.token_env:
            token = read_secret(config.token_env, "token of the artifact repository")
            headers["Authorization"] = f"Bearer {token}"
        elif config.username_env and config.password_env:
            user = read_secret(config.username_env, "user name of the artifact repository")
            password = read_secret(config.password_env, "password of the artifact repository")
            auth = (user, password)
        warn_if_insecure(config.url, "the artifact repository")
        self.session = make_session(auth=auth, headers=headers)

    # -- addresses ------------------------------------------------------------------------------------
    def _base(self, bundle_id: str) -> str:
        return f"{self.config.url}/{quote(self.project, safe='')}/{quote(bundle_id, safe='')}"

    def archive_url(self, bundle_id: str) -> str:
        """URL of a bundle's archive."""
        return f"{self._base(bundle_id)}/{quote(bundle_id, safe='')}.zip"

    def metadata_url(self, bundle_id: str) -> str:
        """URL of a bundle's metadata file."""
        return f"{self._base(bundle_id)}/{quote(bundle_id, safe='')}.json"

    # -- HTTP -----------------------------------------------------------------------------------------
    def _with_retries(self, fn: Callable[[], T]) -> T:
        return call_with_retries(
            fn, self.retry, transient=lambda e: isinstance(e, ArtifactRepoError) and e.transient
        )

    def _request(
        self, method: str, url: str, operation: str, deadline: Deadline, **kwargs: Any
    ) -> requests.Response:
        """One attempt (body not read yet); a transient ArtifactRepoError for retryable failures."""
        try:
            with deadline:
                resp = self.session.request(method, url, timeout=self.timeout, stream=True, **kwargs)
        except requests.exceptions.SSLError:
            raise ArtifactRepoError(
                f"{operation}: TLS handshake with {self.config.url} failed",
                "check the repository's certificate (REQUESTS_CA_BUNDLE) and URL",
            ) from None
        except requests.RequestException as exc:
            if deadline.expired:
                late = bodies.DeadlineExceeded(f"no complete answer within {deadline.seconds:.0f} s")
                raise self._body_error(operation, late) from None
            kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
            raise ArtifactRepoError(
                f"{operation}: artifact repository {self.config.url} {kind}",
                "check the URL in artifact_repository.url and that the repository is up",
                transient=True,
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
        if resp.status_code in TRANSIENT_STATUSES:
            resp.close()
            raise ArtifactRepoError(
                f"{operation}: artifact repository answered HTTP {resp.status_code} "
                f"{clip(resp.reason or '', 100)}",
                "try again later or check the repository's health",
                transient=True,
            )
        return resp

    def _call(self, method: str, url: str, operation: str, **kwargs: Any) -> tuple[int, bytes]:
        """A request whose (capped) body is read: (status, body), with retries."""

        def attempt() -> tuple[int, bytes]:
            deadline = Deadline(self.limits.request_deadline_s)
            try:
                resp = self._request(method, url, operation, deadline, **kwargs)
                status, reason = resp.status_code, resp.reason
                body = bodies.read_capped(resp, self.limits.max_json_bytes, deadline)
            except bodies.BodyError as exc:
                raise self._body_error(operation, exc) from None
            except requests.RequestException:
                raise ArtifactRepoError(
                    f"{operation}: the answer was cut off", "try again", transient=True
                ) from None
            finally:
                deadline.close()
            self._check(status, reason, operation)
            return status, body

        return self._with_retries(attempt)

    def _body_error(self, operation: str, exc: bodies.BodyError) -> ArtifactRepoError:
        return ArtifactRepoError(
            f"{operation}: refused the answer of the artifact repository: {exc.message}",
            _LIMIT_HINT,
            transient=exc.transient,
        )

    @staticmethod
    def _check(
        status: int, reason: str | None, operation: str, ok: tuple[int, ...] = (200, 201, 204, 404)
    ) -> None:
        if status not in ok:
            raise ArtifactRepoError(
                f"{operation}: artifact repository answered HTTP {status} {clip(reason or '', 100)}",
                "check the repository URL and that it accepts PUT (generic/raw repository)",
            )

    # -- operations -----------------------------------------------------------------------------------
    def get_metadata(self, bundle_id: str) -> dict[str, Any] | None:
        """The metadata of a published bundle, or None when it is not published."""
        op = f"read metadata of bundle {bundle_id}"
        status, body = self._call("GET", self.metadata_url(bundle_id), op)
        if status == 404:
            return None
        self._check(status, None, op, ok=(200,))
        try:
            data = json.loads(body)
        except ValueError:
            raise IntegrityError(
                f"metadata of bundle {bundle_id} in the artifact repository is not JSON",
                "publish the bundle again",
            ) from None
        if not isinstance(data, dict) or not data.get("sha256"):
            raise IntegrityError(
                f"metadata of bundle {bundle_id} in the artifact repository has no sha256",
                "publish the bundle again",
            )
        size = data.get("size")
        if isinstance(size, int) and size >= 0:
            self._sizes[bundle_id] = size
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
        status, _ = self._call("PUT", url, op, data=_FileBody(archive, progress), headers=headers)
        self._check(status, None, op, ok=(200, 201, 204))
        self._sizes[bundle_id] = sums.size
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
        status, _ = self._call("PUT", url, op, data=body, headers=headers)
        self._check(status, None, op, ok=(200, 201, 204))
        return url

    def _receive(
        self,
        bundle_id: str,
        dest: Path | None,
        op: str,
        missing: MlcdError,
        expected: int | None,
        progress: Progress | None,
    ) -> tuple[int, str]:
        """GET the archive into ``dest`` with the shared streaming download, within its size and deadline."""
        url = self.archive_url(bundle_id)
        expected = expected if expected is not None else self._sizes.get(bundle_id)

        def attempt() -> tuple[int, str]:
            deadline = Deadline(self.limits.request_deadline_s)
            try:
                resp = self._request("GET", url, op, deadline)
                if resp.status_code == 404:
                    resp.close()
                    raise missing
                if resp.status_code != 200:
                    resp.close()
                    self._check(resp.status_code, resp.reason, op, ok=(200,))
                got = bodies.receive_to_file(
                    resp, dest, limits=self.limits, expected=expected, deadline=deadline, progress=progress
                )
            except bodies.BodyError as exc:
                raise self._body_error(op, exc) from None
            except OSError as exc:
                raise InputError(f"cannot write {dest}: {exc.strerror}", "check disk space") from None
            finally:
                deadline.close()
            return got.size, got.sha256

        return self._with_retries(attempt)

    def download(
        self,
        bundle_id: str,
        dest: Path,
        progress: Progress | None = None,
        expected_size: int | None = None,
    ) -> tuple[int, str]:
        """Stream a published archive to ``dest`` (via ``dest.part``); returns (size, sha256).

        The download may not exceed ``expected_size``, else the size in the metadata
        :meth:`get_metadata` read, else ``Content-Length``: the first byte over aborts it.
        """
        missing = InputError(
            f"bundle {bundle_id} of project {self.project} is not in the artifact repository",
            "check the bundle id, or run `mlcd publish` for it first",
        )
        op = f"download bundle {bundle_id}"
        return self._receive(bundle_id, dest, op, missing, expected_size, progress)

    def remote_sha256(self, bundle_id: str) -> tuple[int, str]:
        """Read the stored archive back (streaming, hashed, not stored) and return its (size, sha256)."""
        missing = IntegrityError(
            f"bundle {bundle_id} is missing from the artifact repository after upload",
            "check the repository (quota, retention rules) and publish again",
        )
        op = f"verify bundle {bundle_id} in the artifact repository"
        return self._receive(bundle_id, None, op, missing, None, None)

    def close(self) -> None:
        """Release the HTTP session."""
        self.session.close()
