"""Errors a use case raises; web and API layers turn them into messages and status codes."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused user action. ``status`` is the HTTP status the API answers with."""

    status = 400
    code = "invalid"

    def __init__(self, message_fr: str, message_en: str | None = None, *, code: str | None = None):
        super().__init__(message_fr)
        self.message_fr = message_fr
        self.message_en = message_en or message_fr
        if code:
            self.code = code

    def message(self, locale: str = "fr") -> str:
        return self.message_en if str(locale).startswith("en") else self.message_fr


class Invalid(ServiceError):
    status = 400
    code = "invalid"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """A refused or stale transition: the dossier changed, or the action is not allowed now."""

    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    status = 413
    code = "too_large"


class Unprocessable(ServiceError):
    """A document we cannot sign (broken, encrypted PDF…)."""

    status = 422
    code = "unprocessable"


class Throttled(ServiceError):
    status = 429
    code = "throttled"


class Unavailable(ServiceError):
    """A service we depend on (Redis, TSA, token) is unreachable: nothing was changed."""

    status = 503
    code = "unavailable"
