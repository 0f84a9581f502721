"""The web console's errors, under core's tree.

WebError
├── UserError          a user name, role or password problem (`skyclass users`, exit 2)
├── UploadRefused      an upload over its size limit or of the wrong type: nothing changed
├── LoginRequired      no valid session: pages redirect to /login, the API answers 401
├── Forbidden          the role may not do this (403)
├── CsrfRefused        a form post or API change without the session's CSRF token (403)
└── LoginThrottled     too many failed logins for the name or the address (429)

Every message says what was wrong and what to do.
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class WebError(SkyclassError):
    """Root of the web console's errors."""

    status_code = 400


class UserError(WebError, BadInputError):
    """A console user could not be added or changed."""


class UploadRefused(WebError, BadInputError):
    """An upload was refused before anything read it (size or type)."""

    def __init__(self, message: str, *, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class LoginRequired(WebError):
    status_code = 401


class Forbidden(WebError):
    status_code = 403


class CsrfRefused(WebError):
    status_code = 403


class LoginThrottled(WebError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
