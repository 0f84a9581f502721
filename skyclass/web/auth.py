"""Who may do what: roles and permissions, the session cookie, CSRF, the login throttle.

* Each role reaches only its own pages and actions (ROLE_PERMISSIONS): only an
  operator publishes schedules, only a reviewer signs lessons off, only an admin
  manages partner keys.
* The session cookie is HttpOnly and SameSite=Lax, Secure when the request came
  over HTTPS (directly or per X-Forwarded-Proto); the database holds only its hash.
* Every state-changing request made with the cookie must carry the session's CSRF
  token: the ``csrf_token`` form field or the ``X-CSRF-Token`` header. The login
  form, which has no session yet, uses a double-submit cookie instead.
* Partner API keys (X-API-Key) are never looked at here: they open /epg/… only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from enum import StrEnum

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from skyclass.web.errors import CsrfRefused, Forbidden, LoginRequired
from skyclass.web.services import Actor, WebServices
from skyclass.web.sessions import ConsoleSession
from skyclass.web.users import Role

logger = logging.getLogger(__name__)

SESSION_COOKIE = "skyclass_session"
LOGIN_CSRF_COOKIE = "skyclass_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Permission(StrEnum):
    DASHBOARD = "dashboard"  # multiviewer: status, pictures, alarms
    SCHEDULE_VIEW = "schedule.view"  # weekly grid, versions, history, diff
    SCHEDULE_EDIT = "schedule.edit"  # dry run, publish, rollback
    ASSETS_VIEW = "assets.view"  # search, QC reports, attachments
    ASSETS_REVIEW = "assets.review"  # sign-off (政治性、科学性、规范性)
    ASRUN_VIEW = "asrun.view"
    FINDINGS_VIEW = "findings.view"  # compliance findings and reports
    PARTNERS_MANAGE = "partners.manage"  # partner keys: create, list, revoke
    USERS_VIEW = "users.view"
    AUDIT_VIEW = "audit.view"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(
        {P.DASHBOARD, P.SCHEDULE_VIEW, P.SCHEDULE_EDIT, P.ASSETS_VIEW, P.ASRUN_VIEW}
    ),
    Role.REVIEWER: frozenset({P.ASSETS_VIEW, P.ASSETS_REVIEW}),
    Role.COMPLIANCE: frozenset(
        {P.DASHBOARD, P.SCHEDULE_VIEW, P.ASSETS_VIEW, P.ASRUN_VIEW, P.FINDINGS_VIEW, P.AUDIT_VIEW}
    ),
    Role.ADMIN: frozenset({P.PARTNERS_MANAGE, P.USERS_VIEW, P.AUDIT_VIEW}),
}


def may(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def web(request: Request) -> WebServices:
    services = request.app.state.web
    assert isinstance(services, WebServices)
    return services


def client_address(request: Request) -> str:
    # uvicorn already applied X-Forwarded-For from trusted proxies (--forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",", 1)[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def actor(request: Request, session: ConsoleSession) -> Actor:
    return Actor(name=session.user.name, role=session.role.value, address=client_address(request))


async def current_session(request: Request) -> ConsoleSession | None:
    """The session of this request's cookie (looked up once per request), or None."""
    if hasattr(request.state, "console_session"):
        cached: ConsoleSession | None = request.state.console_session
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    services = web(request)
    found = None
    if token:
        found = await run_in_threadpool(services.sessions.lookup, token, at=services.now())
    request.state.console_session = found
    return found


async def _sent_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, session: ConsoleSession) -> None:
    sent = await _sent_csrf(request)
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        logger.warning(
            "CSRF refused: %s %s by %s", request.method, request.url.path, session.user.name
        )
        raise CsrfRefused(
            "this form or request lacks a valid CSRF token (安全令牌无效): reload the page and "
            f"try again; API clients send the {CSRF_HEADER} header from /api/session"
        )


def require(permission: Permission) -> Callable[[Request], Awaitable[ConsoleSession]]:
    """A dependency: a logged-in session whose role has ``permission`` (and CSRF on changes)."""

    async def dependency(request: Request) -> ConsoleSession:
        session = await current_session(request)
        if session is None:
            raise LoginRequired("log in first (请先登录): POST /api/login or open /login")
        if not may(session.role, permission):
            raise Forbidden(
                f"{session.user.name} ({session.role.name_zh} {session.role.value}) may not "
                f"use {permission.value} (无权限)"
            )
        if request.method not in SAFE_METHODS:
            await check_csrf(request, session)
        return session

    dependency.__name__ = f"require_{permission.name.lower()}"
    dependency.permission = permission  # type: ignore[attr-defined]  # tests read the map
    return dependency


async def logged_in(request: Request) -> ConsoleSession:
    """A dependency: any logged-in user (CSRF checked on changes)."""
    session = await current_session(request)
    if session is None:
        raise LoginRequired("log in first (请先登录): POST /api/login or open /login")
    if request.method not in SAFE_METHODS:
        await check_csrf(request, session)
    return session


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def login_csrf_token(request: Request) -> str:
    """The login form's token (there is no session yet): the browser's cookie or a new one."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    return token if 20 <= len(token) <= 100 else secrets.token_urlsafe(32)


def set_login_csrf_cookie(request: Request, response: Response, token: str) -> None:
    """Double submit: the form field must equal this cookie, which other sites cannot read."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def check_login_csrf(request: Request, sent: str) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CsrfRefused("the login form expired or lacks its CSRF token: reload and log in again")
