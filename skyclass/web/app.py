"""The app factory: one FastAPI app for the console, its JSON API, /metrics and the EPG pull.

Order of defence for every request (``ConsoleGate``, pure ASGI, before any route):
1. a request body over its path's limit is refused (413) before it is read;
2. a console page or /api/ call without a valid session never reaches a route:
   pages redirect to /login, the API answers 401 (so even malformed input or an
   unknown path tells an anonymous caller nothing);
3. every answer carries a Content-Security-Policy that allows this origin only
   (nothing is loaded from the internet) and refuses framing.
Then each route checks its role's permission and, on changes, the CSRF token.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from skyclass import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from epg.context import EpgRuntime
    from skyclass.web.findings import ComplianceSource
    from skyclass.web.multiviewer import LiveStatusSource, PictureSource
    from skyclass.web.services import IngestQueue, WebServices
    from skyclass.web.sessions import ThrottlePolicy
    from skyclass.web.uploads import UploadLimits

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
DRAIN_BYTES = 64 * 1024 * 1024  # a refused body is read and dropped up to this size
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


def wants_json(path: str) -> bool:
    return path.startswith(("/api/", "/epg/", "/metrics")) or path == "/api"


def _protected(path: str) -> bool:
    if path == "/api/login":
        return False
    return path == "/api" or path.startswith(("/api/", "/console"))


class ConsoleGate:
    """Body limits, the login gate and security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, services: WebServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in existing]
                # an error is never kept by a cache, even on paths whose successes are
                cached = (
                    path.startswith(("/static/", "/epg/", "/fonts/")) and message["status"] < 400
                )
                if not cached and b"cache-control" not in existing:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            limit = self.services.limits.body_limit(path)
            length = headers.get("content-length")
            if length is None and "chunked" in headers.get("transfer-encoding", ""):
                await self._refuse(
                    scope, send_with_headers, 411, "send a Content-Length with the request body"
                )
                return
            if length is not None and (not length.isdigit() or int(length) > limit):
                shown = f"{int(length) / 1048576:.1f} MB" if length.isdigit() else length
                await _drain(receive, DRAIN_BYTES)
                await self._refuse(
                    scope,
                    send_with_headers,
                    413,
                    f"request body of {shown} is over the {limit / 1048576:.1f} MB limit "
                    "for this address (文件过大): nothing was changed",
                )
                return
        if _protected(path):
            from starlette.concurrency import run_in_threadpool

            cookie = _cookie(headers.get("cookie", ""), "skyclass_session")
            session = None
            if cookie:
                session = await run_in_threadpool(
                    self.services.sessions.lookup, cookie, at=self.services.now()
                )
            scope.setdefault("state", {})["console_session"] = session
            if session is None:
                if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
                    await _drain(receive, DRAIN_BYTES)
                if wants_json(path):
                    await self._refuse(
                        scope,
                        send_with_headers,
                        401,
                        "log in first (请先登录): POST /api/login",
                        extra=[(b"www-authenticate", b'Cookie realm="skyclass"')],
                    )
                else:
                    target = path + (
                        f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
                    )
                    await self._redirect(send_with_headers, f"/login?next={quote(target, safe='')}")
                return
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(
        scope: Scope,
        send: Send,
        status: int,
        detail: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        if wants_json(scope["path"]):
            body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
            media = b"application/json"
        else:
            body = _plain_page(status, detail).encode()
            media = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    *(extra or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _redirect(send: Send, location: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive, cap: int) -> None:
    """Read (and drop) a refused body up to ``cap`` bytes, so the client reads our answer.

    Answering while the client still sends makes its TCP stack see a reset instead of
    the 413; a body larger than ``cap`` is cut off (the connection closes).
    """
    seen = 0
    while seen <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _cookie(header: str, name: str) -> str:
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel else ""


def _plain_page(status: int, detail: str) -> str:
    from html import escape

    return (
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
        f"<title>{status}</title><link rel='stylesheet' href='/static/console.css'>"
        f"<main class='error-page'><h1>{status}</h1><p>{escape(detail)}</p>"
        "<p><a href='/'>返回 Back</a></p></main></html>"
    )


def create_app(
    runtime: EpgRuntime,
    *,
    guide_cache_size: int = 64,
    status: LiveStatusSource | None = None,
    pictures: PictureSource | None = None,
    compliance: ComplianceSource | None = None,
    ingest_queue: IngestQueue | None = None,
    limits: UploadLimits | None = None,
    throttle: ThrottlePolicy | None = None,
    metrics_token: str | None = None,
) -> FastAPI:
    """The skyclass HTTP app over one runtime (guide_cache_size=0 renders every request).

    Typed by the slice the routers need (``epg.context.EpgRuntime``), so tests and
    benchmarks can pass a lightweight runtime; the shell's Runtime satisfies it.
    The live status, pictures, compliance findings and ingest queue are plug-in
    points with file-reading defaults (see multiviewer.py, findings.py).
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.staticfiles import StaticFiles

    from core.errors import BadInputError, SkyclassError
    from epg.api import make_router as epg_router
    from epg.errors import NoScheduleError, ScheduleFormatError, ScheduleRejected
    from ingest import UnknownAssetError
    from skyclass.web import api, console, metrics
    from skyclass.web.errors import LoginThrottled, WebError
    from skyclass.web.services import WebServices

    services = WebServices(
        runtime,
        status=status,
        pictures=pictures,
        compliance=compliance,
        ingest_queue=ingest_queue,
        limits=limits,
        throttle=throttle,
    )
    app = FastAPI(
        title="skyclass",
        version=__version__,
        description="空中课堂 operator console API, the EPG pull API for partners, and metrics.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = services
    templates = console.make_templates()
    app.include_router(epg_router(services.epg, cache_size=guide_cache_size))
    app.include_router(api.make_router())
    app.include_router(console.make_router(templates))
    app.include_router(metrics.make_router(metrics_token))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/fonts/cjk.otf", include_in_schema=False)
    def cjk_font() -> Response:
        """Noto Sans CJK from the installed wheel, for browsers without a Chinese font."""
        from fastapi.responses import FileResponse, JSONResponse

        from ingest.fonts import cjk_font_path

        path = cjk_font_path()
        if path is None:
            return JSONResponse({"detail": "no CJK font installed"}, status_code=404)
        return FileResponse(
            path, media_type="font/otf", headers={"Cache-Control": "public, max-age=604800"}
        )

    app.add_middleware(ConsoleGate, services=services)

    def problem(request: Request, status_code: int, detail: Any, **headers: str) -> Response:
        from fastapi.responses import HTMLResponse, JSONResponse

        if wants_json(request.url.path):
            return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
        session = getattr(request.state, "console_session", None)
        page = templates.TemplateResponse(
            request,
            "error.html",
            {
                "session": session,
                "user": session.user if session else None,
                "csrf": session.csrf_token if session else "",
                "nav": [],
                "message": str(detail),
                "status_code": status_code,
                "can": lambda _p: False,
                "zone_name": str(runtime.zone),
            },
            status_code=status_code,
            headers=headers,
        )
        assert isinstance(page, HTMLResponse)
        return page

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> Response:
        from fastapi.responses import RedirectResponse

        headers = {}
        if isinstance(exc, LoginThrottled):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status_code == 401 and not wants_json(request.url.path):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return problem(request, exc.status_code, str(exc), **headers)

    @app.exception_handler(SkyclassError)
    async def skyclass_error(request: Request, exc: SkyclassError) -> Response:
        if isinstance(exc, ScheduleRejected):
            if wants_json(request.url.path):
                from fastapi.responses import JSONResponse

                return JSONResponse(
                    {"detail": str(exc).split("\n", 1)[0], **exc.as_json()}, status_code=422
                )
            return problem(request, 422, str(exc))
        if isinstance(exc, UnknownAssetError | NoScheduleError):
            return problem(request, 404, str(exc))
        if isinstance(exc, ScheduleFormatError):
            return problem(request, 422, str(exc))
        if isinstance(exc, BadInputError):
            return problem(request, 400, str(exc))
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return problem(request, 500, f"{type(exc).__name__}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        if wants_json(request.url.path):
            from fastapi.responses import JSONResponse

            return JSONResponse({"detail": errors}, status_code=422)
        text = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return problem(request, 422, f"输入有误 invalid input: {text}")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
