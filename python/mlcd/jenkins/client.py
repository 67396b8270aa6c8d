"""A python-jenkins client for one controller: credentials from environment variables, bounded answers.

The user and API token are read from the environment variables the command names
(``--user-env``/``--token-env``, default ``JENKINS_USER``/``JENKINS_API_TOKEN``),
never from the command line, and the token is registered for redaction. Every
answer is read through :func:`mlcd.transport.bodies.read_capped` (a response hook
on python-jenkins' session: at most ``MLCD_MAX_JSON_BYTES``, no compression) with a
socket timeout. :func:`jenkins_call` turns python-jenkins' exceptions into one
mlcd error with a fix: refused credentials or an unreachable controller exit 6.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import requests

import jenkins
from mlcd.errors import InputError, MlcdError, NodeError
from mlcd.redact import clip, register_secret
from mlcd.transport.bodies import BodyError, read_capped
from mlcd.transport.limits import Limits

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
_STATUS = re.compile(r"\[(\d{3})\]")


class JenkinsRefused(NodeError):
    """The controller refused the credentials (401/403) or could not be reached."""

    category = "jenkins"


class JenkinsError(InputError):
    """The controller refused a request for another reason (missing plugin, bad XML, unknown job)."""

    category = "jenkins"


def _bounded(limit: int) -> Callable[..., requests.Response]:
    def hook(resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            body = read_capped(resp, limit)
        except BodyError as exc:
            raise JenkinsError(
                f"Jenkins answered {resp.url}: {exc}", "check the URL and the controller"
            ) from None
        resp._content = body
        resp._content_consumed = True  # type: ignore[attr-defined]
        return resp

    return hook


def connect(
    url: str | None, user_env: str, token_env: str, timeout: float = DEFAULT_TIMEOUT
) -> jenkins.Jenkins:
    """A python-jenkins client for ``url`` with the credentials of the two environment variables."""
    if not url:
        raise InputError("no Jenkins URL", "pass --jenkins-url URL or set JENKINS_URL")
    if not re.match(r"^https?://[^\s/]+", url):
        raise InputError(
            f"Jenkins URL {clip(url, 200)!r} is not http(s)://host[/path]", "give the controller's URL"
        )
    user = os.environ.get(user_env) or None
    token = os.environ.get(token_env) or None
    register_secret(token)
    if (user is None) != (token is None):
        missing = user_env if user is None else token_env
        raise InputError(f"environment variable {missing} is not set", f"set both {user_env} and {token_env}")
    server = jenkins.Jenkins(url, username=user, password=token, timeout=timeout)
    session = server._session
    session.headers["Accept-Encoding"] = "identity"
    session.hooks["response"].append(_bounded(Limits.from_env().max_json_bytes))
    return server


def _status(exc: Exception) -> int | None:
    found = _STATUS.search(str(exc))
    return int(found.group(1)) if found else None


def jenkins_call(what: str, call: Callable[[], T], *, fix: str = "check the controller's log") -> T:
    """Run one python-jenkins call; its failure becomes one mlcd error line naming ``what``."""
    try:
        return call()
    except MlcdError:
        raise
    except jenkins.TimeoutException:
        raise JenkinsRefused(
            f"{what}: Jenkins did not answer in time", "check the URL and the network"
        ) from None
    except jenkins.NotFoundException:
        raise JenkinsError(f"{what}: not found on the controller", fix) from None
    except jenkins.JenkinsException as exc:
        status = _status(exc)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        first = clip(" ".join(lines[:2]), 300)  # python-jenkins' summary, then the first line of the body
        if status in (401, 403):
            raise JenkinsRefused(
                f"{what}: Jenkins refused the credentials (HTTP {status})",
                "check the user and API token in the environment variables --user-env/--token-env name, "
                "and that the user may configure jobs",
            ) from None
        raise JenkinsError(f"{what}: {first}", fix) from None
    except requests.ConnectionError:
        raise JenkinsRefused(
            f"{what}: cannot connect to Jenkins", "check --jenkins-url and the network"
        ) from None
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise JenkinsError(f"{what}: Jenkins answered HTTP {code}", fix) from None
