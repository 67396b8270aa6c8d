"""Typed errors of the DSS client.

Every failure of a DSS call is a :class:`DSSError` carrying the HTTP status, the
DSS ``errorType`` and ``code``, the DSS message, the node name and the operation
mlcd was doing, so callers can tell a missing project (404) from a refused key
(401/403) or a conflict (409). Messages are redacted: no API key ever appears.

Exit codes (see ``mlcd.errors.ExitCode``):

=====================  ======  =====================================================
class                  status  exit code
=====================  ======  =====================================================
DSSBadRequest          400     8 DEPLOY_FAILED (DSS refused the step)
DSSUnauthorized        401     6 NODE_UNREACHABLE (API key refused)
DSSForbidden           403     6 NODE_UNREACHABLE (key lacks the right)
DSSNotFound            404     2 BAD_INPUT (project, bundle or scenario id wrong)
DSSConflict            409     8 DEPLOY_FAILED (already exists / already running)
DSSServerError         5xx     8 DEPLOY_FAILED
DSSUnavailable         408/429/502/503/504 after retries: 6 NODE_UNREACHABLE
DSSUnreachable         -       6 NODE_UNREACHABLE (connection, TLS, read timeout)
DSSTransferIncomplete  -       6 NODE_UNREACHABLE (download cut off)
DSSTimeout             -       8 DEPLOY_FAILED (a wait's deadline expired; ``run_id``)
DSSRunCancelled        -       8 DEPLOY_FAILED (trigger fire cancelled)
DSSSettingsNotKept     -       8 DEPLOY_FAILED (DSS dropped written settings)
other DSSError         any     8 DEPLOY_FAILED
=====================  ======  =====================================================

A DSS message is cut to its first line (the ``detailedMessage`` of some errors
holds a whole Java stack trace); the rest is kept in ``trace`` and logged at
debug level, so it shows only under ``--debug``.
"""

from __future__ import annotations

import logging
import re

from mlcd.errors import ExitCode, MlcdError, NodeError
from mlcd.redact import redact
from mlcd.transport.retry import TRANSIENT_STATUSES

MAX_MESSAGE_CHARS = 400
_JAVA_PREFIX = re.compile(r"^(?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error): ")
log = logging.getLogger("mlcd.dss")


def split_message(message: str) -> tuple[str, str]:
    """(first line, minus a leading Java exception class, at most 400 chars; the rest: a stack trace...)."""
    lines = [line for line in message.replace("\r", "").split("\n")]
    head_index = next((i for i, line in enumerate(lines) if line.strip()), 0)
    head = " ".join(lines[head_index].split()) if lines else ""
    head = _JAVA_PREFIX.sub("", head)
    rest = "\n".join(lines[head_index + 1 :]).strip("\n")
    if len(head) > MAX_MESSAGE_CHARS:
        rest = head[MAX_MESSAGE_CHARS:] + ("\n" + rest if rest else "")
        head = head[:MAX_MESSAGE_CHARS].rstrip() + "..."
    return head, rest


class DSSError(MlcdError):
    """A DSS call failed. ``transient`` says whether trying again may help."""

    exit_code = ExitCode.DEPLOY_FAILED
    category = "dss"
    default_hint: str | None = None

    def __init__(
        self,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        message: str = "",
        node: str = "",
        operation: str = "",
        *,
        hint: str | None = None,
        run_id: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.code = code
        self.dss_message, self.trace = split_message(redact(message or ""))
        if self.trace:
            log.debug("DSS %s: %s: rest of the message:\n%s", node, operation, self.trace)
        self.node = node
        self.operation = operation
        self.run_id = run_id
        self.transient = transient
        self.retry_after = retry_after
        if hint is None and code == "ERR_NOT_SUPPORTED_ON_THIS_NODE":
            where = "design.url" if node == "design" else f"the url of environment {node}"
            hint = f"{where} in mlcd.yaml points at a DSS node of the wrong role: point it at the right node"
        super().__init__(self._compose(), redact(hint) if hint else self.default_hint)

    def _compose(self) -> str:
        where = f" on node {self.node}" if self.node else ""
        head = f"{self.operation}{where} failed" if self.operation else f"DSS call{where} failed"
        parts: list[str] = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_type:
            parts.append(self.error_type.rsplit(".", 1)[-1])
        if self.code:
            parts.append(self.code)
        detail = f" ({', '.join(parts)})" if parts else ""
        text = f"{head}{detail}"
        if self.dss_message:
            text = f"{text}: {self.dss_message}"
        if self.run_id:
            text = f"{text} [run {self.run_id}]"
        return redact(" ".join(text.split()))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_type={self.error_type!r}, "
            f"code={self.code!r}, node={self.node!r}, operation={self.operation!r}, "
            f"message={self.dss_message!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (
                type(self),
                self.status,
                self.error_type,
                self.code,
                self.dss_message,
                self.node,
                self.operation,
                self.hint,
                self.run_id,
                self.transient,
            ),
        )


def _rebuild(
    cls: type[DSSError],
    status: int | None,
    error_type: str | None,
    code: str | None,
    message: str,
    node: str,
    operation: str,
    hint: str | None,
    run_id: str | None,
    transient: bool,
) -> DSSError:
    return cls(
        status, error_type, code, message, node, operation, hint=hint, run_id=run_id, transient=transient
    )


class DSSBadRequest(DSSError):
    """HTTP 400: DSS refused the request (e.g. a missing connection on activation)."""

    category = "dss_refused"


class DSSUnauthorized(DSSError, NodeError):
    """HTTP 401: the API key was refused."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "node_unauthorized"
    default_hint = "check the API key in the environment variable named by mlcd.yaml"


class DSSForbidden(DSSError, NodeError):
    """HTTP 403: the API key lacks the right for this operation."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "node_forbidden"
    default_hint = "give the API key's user the needed permission on the project"


class DSSSettingsNotKept(DSSError):
    """DSS answered a settings write with success but did not keep what was written."""

    category = "dss_settings_not_kept"


class DSSNotFound(DSSError):
    """HTTP 404: the project, bundle, scenario or run does not exist."""

    exit_code = ExitCode.BAD_INPUT
    category = "dss_not_found"


class DSSConflict(DSSError):
    """HTTP 409: the object already exists or is in a conflicting state."""

    category = "dss_conflict"


class DSSServerError(DSSError):
    """HTTP 5xx (or an unexpected status)."""

    category = "dss_server"


class DSSUnavailable(DSSServerError, NodeError):
    """429/502/503/504 that persisted after every retry."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "node_unavailable"
    default_hint = "the node is overloaded or restarting; try again later"


class DSSUnreachable(DSSError, NodeError):
    """No usable answer: connection refused, DNS, TLS failure or read timeout."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "node_unreachable"
    default_hint = "check the node URL, that the node is up, and its TLS settings in mlcd.yaml"


class DSSTransferIncomplete(DSSUnreachable):
    """A download was cut off before its announced length."""

    category = "transfer_incomplete"
    default_hint = "the download can be retried from scratch"


class DSSTimeout(DSSError):
    """A wait's deadline expired; the run or future was aborted. ``run_id`` names it."""

    category = "timeout"
    default_hint = "raise the timeout in mlcd.yaml or look at the run on the node"


class DSSRunCancelled(DSSConflict):
    """DSS cancelled the trigger fire (usually: the scenario was already running)."""

    category = "run_cancelled"
    default_hint = "wait for the scenario's current run to finish (or abort it) and run again"


_BY_STATUS: dict[int, type[DSSError]] = {
    400: DSSBadRequest,
    401: DSSUnauthorized,
    403: DSSForbidden,
    404: DSSNotFound,
    409: DSSConflict,
}


def error_class_for_status(status: int) -> type[DSSError]:
    """The :class:`DSSError` subclass for an HTTP error status."""
    if status in TRANSIENT_STATUSES:
        return DSSUnavailable
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return DSSServerError
    return DSSError
