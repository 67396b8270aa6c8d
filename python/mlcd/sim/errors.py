"""DSS-shaped API errors: the JSON body and HTTP status real DSS answers with."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

NOT_FOUND = "com.dataiku.dip.server.controllers.NotFoundException"
UNAUTHORIZED = "com.dataiku.dip.exceptions.UnauthorizedException"
NOT_AUTHENTICATED = "com.dataiku.dip.exceptions.NotAuthenticatedException"
FORBIDDEN = "com.dataiku.dip.exceptions.ForbiddenException"
CODED = "com.dataiku.dip.exceptions.CodedException"
ILLEGAL_ARGUMENT = "java.lang.IllegalArgumentException"
ALREADY_EXISTS = "com.dataiku.dip.exceptions.AlreadyExistsException"
INTERNAL = "java.lang.IllegalStateException"

_DEFAULT_TYPES = {
    400: CODED,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: ILLEGAL_ARGUMENT,
    409: ALREADY_EXISTS,
}


class SimError(Exception):
    """An API error answered as DSS does: status, Java ``errorType``, ``message`` and ``code``."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        error_type: str | None = None,
        detailed_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.error_type = error_type or _DEFAULT_TYPES.get(status, INTERNAL)
        self.detailed_message = detailed_message or message

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        body: dict[str, Any] = {
            "errorType": self.error_type,
            "message": self.message,
            "detailedMessage": self.detailed_message,
        }
        if self.code:
            body["code"] = self.code
        return body

    def response(self) -> Response:
        """The full HTTP response."""
        return error_response(self.status, self.body())


def error_response(status: int, body: dict[str, Any]) -> Response:
    """A JSON error response with ``status``."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


def not_found(what: str, code: str = "ERR_OBJECT_NOT_FOUND") -> SimError:
    """A 404 for ``what`` (e.g. ``"Project CHURN"``)."""
    return SimError(404, f"{what} does not exist", code=code)


def bad_request(message: str, code: str = "ERR_BAD_REQUEST") -> SimError:
    """A 400 with a DSS error code."""
    return SimError(400, message, code=code)
