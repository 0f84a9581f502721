"""The console's pages: server-rendered Jinja2, Chinese first, no script needed to read them.

Each page route checks its permission (auth.require) and calls WebServices; a
change posted from a form carries the session's CSRF token. The dashboard's
small script (static/console.js) only refreshes what the server renders.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from core.timecode import FPS, frames_to_timecode
from epg.errors import ScheduleFormatError, ScheduleRejected
from epg.schedule import COLUMNS
from epg.validation import ValidationReport
from ingest import AssetKind, ReviewCheck, ReviewState
from skyclass.web.auth import (
    ROLE_PERMISSIONS,
    Permission,
    actor,
    check_login_csrf,
    clear_session_cookie,
    client_address,
    current_session,
    logged_in,
    login_csrf_token,
    may,
    require,
    set_login_csrf_cookie,
    set_session_cookie,
    web,
)
from skyclass.web.errors import LoginRequired, LoginThrottled, UploadRefused
from skyclass.web.findings import SEVERITIES, FindingQuery
from skyclass.web.multiviewer import type_label
from skyclass.web.qcview import loudness_rows, timeline_svg
from skyclass.web.sessions import ConsoleSession
from skyclass.web.uploads import StagedUpload, discard, stage_schedule, staged
from skyclass.web.users import Role

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
P = Permission

#: (path, Chinese, English, permission): the navigation, filtered by role.
NAV = (
    ("/console/", "总览", "Dashboard", P.DASHBOARD),
    ("/console/grid", "周播表", "Weekly grid", P.SCHEDULE_VIEW),
    ("/console/schedule", "节目单", "Schedule", P.SCHEDULE_VIEW),
    ("/console/assets", "素材库", "Assets", P.ASSETS_VIEW),
    ("/console/asrun", "播出记录", "As-run", P.ASRUN_VIEW),
    ("/console/compliance", "合规", "Compliance", P.FINDINGS_VIEW),
    ("/console/partners", "合作方密钥", "Partner keys", P.PARTNERS_MANAGE),
    ("/console/users", "用户", "Users", P.USERS_VIEW),
    ("/console/audit", "审计日志", "Audit log", P.AUDIT_VIEW),
)
KIND_ZH = {
    "lesson": "课程",
    "filler": "垫片",
    "ident": "台标",
    "psa": "公益广告",
    "eye_break": "眼保健操",
    "ad": "广告",
    "promo": "宣传片",
}
STATE_ZH = {"pending": "待审", "approved": "已通过", "rejected": "已驳回"}
DONE = {
    "approved": "已通过审核 Approved",
    "rejected": "已驳回 Rejected",
    "revoked": "密钥已吊销 Key revoked",
}


def landing(role: Role) -> str:
    """Where a role starts: the first page of the navigation it may open."""
    for href, _zh, _en, permission in NAV:
        if permission in ROLE_PERMISSIONS[role]:
            return href
    return "/login"


def _safe_next(target: str | None, role: Role | None = None) -> str | None:
    """Where to go after login: a path on this site (never "//host": an open redirect),
    and only a page the role may open (else its own landing page)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if role is not None:
        path = target.split("?", 1)[0]
        owners = [(href, p) for href, _zh, _en, p in NAV if path.startswith(href.rstrip("/"))]
        if owners:
            _href, permission = max(owners, key=lambda o: len(o[0]))
            if not may(role, permission):
                return None
    return target


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        zone = env.globals["zone"]
        assert isinstance(zone, tzinfo)
        return "—" if value is None else value.astimezone(zone).strftime(fmt)

    def mbps(value: float | None) -> str:
        return "—" if value is None else f"{value / 1e6:.2f} Mb/s"

    def mmss(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        total = int(seconds)
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"

    def size(value: int) -> str:
        return f"{value / 1e6:.1f} MB" if value >= 100_000 else f"{value / 1e3:.0f} KB"

    env.filters["local"] = local
    env.filters["mbps"] = mbps
    env.filters["mmss"] = mmss
    env.filters["size"] = size
    env.filters["timecode"] = frames_to_timecode
    env.filters["type_zh"] = type_label
    env.filters["kind_zh"] = lambda k: KIND_ZH.get(str(k), str(k))
    env.filters["state_zh"] = lambda s: STATE_ZH.get(str(s), str(s))
    env.filters["urlq"] = lambda s: quote(str(s), safe="")
    env.globals["FPS"] = FPS
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    return templates


def make_router(templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def render(
        request: Request,
        name: str,
        session: ConsoleSession | None,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        services = web(request)
        templates.env.globals["zone"] = services.runtime.zone
        nav = [
            (href, zh, en, href.rstrip("/") == request.url.path.rstrip("/"))
            for href, zh, en, permission in NAV
            if session is not None and may(session.role, permission)
        ]
        page = {
            "session": session,
            "user": session.user if session else None,
            "csrf": session.csrf_token if session else "",
            "nav": nav,
            "can": (lambda p: session is not None and may(session.role, Permission(p))),
            "zone_name": str(services.runtime.zone),
            **context,
        }
        return templates.TemplateResponse(request, name, page, status_code=status_code)

    # -- login ----------------------------------------------------------------------------

    @router.get("/")
    async def root(request: Request) -> Response:
        session = await current_session(request)
        return RedirectResponse(landing(session.role) if session else "/login", status_code=303)

    def login_form(
        request: Request, *, status_code: int = 200, next: str = "", error: str = ""
    ) -> HTMLResponse:
        token = login_csrf_token(request)
        response = render(
            request,
            "login.html",
            None,
            status_code=status_code,
            next=next,
            error=error,
            login_csrf=token,
        )
        set_login_csrf_cookie(request, response, token)
        return response

    @router.get("/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        session = await current_session(request)
        if session is not None:
            return RedirectResponse(
                _safe_next(next, session.role) or landing(session.role), status_code=303
            )
        return login_form(request, next=_safe_next(next) or "")

    @router.post("/login")
    def login_submit(
        request: Request,
        name: Annotated[str, Form(max_length=200)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf_token: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        check_login_csrf(request, csrf_token)
        services = web(request)
        try:
            token, session = services.login(name, password, client_address(request))
        except (LoginRequired, LoginThrottled) as exc:
            response = login_form(
                request, status_code=exc.status_code, next=_safe_next(next) or "", error=str(exc)
            )
            if isinstance(exc, LoginThrottled):
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        done = RedirectResponse(
            _safe_next(next, session.role) or landing(session.role), status_code=303
        )
        set_session_cookie(request, done, token, int(services.sessions.lifetime.total_seconds()))
        return done

    @router.post("/logout")
    def logout(
        request: Request, session: Annotated[ConsoleSession, Depends(logged_in)]
    ) -> Response:
        web(request).logout(request.cookies.get("skyclass_session", ""), actor(request, session))
        response = RedirectResponse("/login", status_code=303)
        clear_session_cookie(request, response)
        return response

    # -- dashboard ------------------------------------------------------------------------

    @router.get("/console/")
    def dashboard(
        request: Request, session: Annotated[ConsoleSession, Depends(require(P.DASHBOARD))]
    ) -> Response:
        statuses = web(request).status.snapshot()
        return render(request, "dashboard.html", session, statuses=statuses)

    @router.get("/console")
    def console_home(session: Annotated[ConsoleSession, Depends(logged_in)]) -> Response:
        return RedirectResponse(landing(session.role), status_code=303)

    # -- weekly grid ----------------------------------------------------------------------

    @router.get("/console/grid")
    def grid(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        channel: str | None = None,
        week: date | None = None,
    ) -> Response:
        services = web(request)
        channel_id = channel or services.channel_ids()[0]
        shown = services.week(channel_id, week or services.today())
        return render(
            request,
            "grid.html",
            session,
            week=shown,
            channels=list(services.runtime.registry),
            channel_id=channel_id,
            previous=shown.monday - timedelta(days=7),
            following=shown.monday + timedelta(days=7),
        )

    @router.get("/console/grid/{channel_id}/{day}/{seq}")
    def grid_event(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        channel_id: str,
        day: date,
        seq: int,
    ) -> Response:
        services = web(request)
        shown = services.week(channel_id, day)
        found = next(
            (e for d in shown.days if d.day == day for e in d.events if e.seq == seq), None
        )
        if found is None:
            return render(
                request,
                "error.html",
                session,
                status_code=404,
                message=f"{channel_id} {day} has no event #{seq} in its current schedule",
            )
        asset = services.epg.assets.find(found.asset_id) if found.asset_id else None
        return render(request, "event.html", session, event=found, asset=asset)

    # -- schedules ------------------------------------------------------------------------

    def schedule_page(
        request: Request,
        session: ConsoleSession,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        services = web(request)
        context.setdefault("report", None)
        context.setdefault("refused", "")
        context.setdefault("upload", None)
        context.setdefault("published", None)
        return render(
            request,
            "schedule.html",
            session,
            status_code=status_code,
            versions=services.recent_versions(15),
            limit_mb=services.limits.schedule_bytes / 1024 / 1024,
            columns=list(COLUMNS.items()),
            channels=services.channel_ids(),
            today=services.today(),
            **context,
        )

    def report_context(report: ValidationReport) -> dict[str, Any]:
        bad_rows = {p.row for p in report.errors}
        bad_cells = {(p.row, p.column) for p in report.errors}
        return {
            "report": report,
            "bad_rows": bad_rows,
            "bad_cells": bad_cells,
            "preview": report.source.rows[:1000],
        }

    @router.get("/console/schedule")
    def schedule(
        request: Request, session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))]
    ) -> Response:
        return schedule_page(request, session)

    @router.post("/console/schedule")
    def schedule_upload(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_EDIT))],
        file: Annotated[UploadFile | None, File()] = None,
        action: Annotated[str, Form(max_length=20)] = "dry_run",
    ) -> Response:
        services = web(request)
        if file is None or not file.filename:
            return schedule_page(
                request, session, status_code=400, refused="请选择文件 Choose a schedule file first"
            )
        try:
            upload = stage_schedule(
                file.file, file.filename, file.content_type, services.staging, services.limits
            )
        except UploadRefused as exc:
            return schedule_page(request, session, status_code=exc.status_code, refused=str(exc))
        return check_and_publish(request, session, upload, publish=action == "publish")

    @router.post("/console/schedule/publish")
    def schedule_publish_staged(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_EDIT))],
        upload_id: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        try:
            upload = staged(web(request).staging, upload_id)
        except UploadRefused as exc:
            return schedule_page(request, session, status_code=exc.status_code, refused=str(exc))
        return check_and_publish(request, session, upload, publish=True)

    def check_and_publish(
        request: Request, session: ConsoleSession, upload: StagedUpload, *, publish: bool
    ) -> HTMLResponse:
        services = web(request)
        try:
            report = services.check_schedule(upload)
        except ScheduleFormatError as exc:
            discard(upload)
            return schedule_page(request, session, status_code=422, refused=str(exc))
        if not report.ok:
            discard(upload)
            return schedule_page(
                request, session, status_code=422, upload=upload, **report_context(report)
            )
        if not publish:
            return schedule_page(request, session, upload=upload, **report_context(report))
        try:
            version = services.publish_schedule(upload, actor(request, session))
        except ScheduleRejected as exc:  # changed since the dry run (e.g. an asset un-approved)
            discard(upload)
            return schedule_page(request, session, status_code=422, refused=str(exc))
        discard(upload)
        return schedule_page(request, session, published=version, **report_context(report))

    @router.get("/console/schedule/versions/{number}")
    def schedule_version(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        number: int,
    ) -> Response:
        version = web(request).epg.schedules.version(number)
        return render(request, "version.html", session, version=version)

    @router.get("/console/schedule/history")
    def schedule_history(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        channel: str,
        day: Annotated[date, Query(alias="date")],
    ) -> Response:
        versions = web(request).history(channel, day)
        return render(request, "history.html", session, versions=versions, channel=channel, day=day)

    @router.post("/console/schedule/rollback")
    def schedule_rollback(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_EDIT))],
        channel: Annotated[str, Form(max_length=128)],
        day: Annotated[date, Form(alias="date")],
        to: Annotated[int | None, Form()] = None,
    ) -> Response:
        version = web(request).rollback(channel, day, to, actor(request, session))
        return RedirectResponse(f"/console/schedule/versions/{version.number}", status_code=303)

    # -- assets ---------------------------------------------------------------------------

    @router.get("/console/assets")
    def assets(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.ASSETS_VIEW))],
        q: Annotated[str, Query(max_length=200)] = "",
        kind: Annotated[str, Query(max_length=16)] = "",
        grade: Annotated[str, Query(max_length=8)] = "",
        state: Annotated[str, Query(max_length=16)] = "",
        subject: Annotated[str, Query(max_length=64)] = "",
    ) -> Response:
        services = web(request)
        # A form sends "" for "all"; an unknown value matches nothing (never an error page).
        kinds = {k.value for k in AssetKind}
        states = {s.value for s in ReviewState}
        found = []
        if (not kind or kind in kinds) and (not state or state in states):
            found = services.search_assets(
                q=q,
                kind=AssetKind(kind) if kind else None,
                grade=grade or None,
                state=ReviewState(state) if state else None,
                subject=subject or None,
            )
        return render(
            request,
            "assets.html",
            session,
            assets=found[:500],
            total=len(found),
            q=q,
            kind=kind,
            grade=grade,
            state=state,
            subject=subject,
            kinds=[k.value for k in AssetKind],
            states=[s.value for s in ReviewState],
            queue_configured=services.ingest_queue.configured,
            jobs=services.ingest_queue.jobs(limit=50),
        )

    @router.get("/console/assets/{ref}")
    def asset_page(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.ASSETS_VIEW))],
        ref: str,
        done: str = "",
    ) -> Response:
        asset = web(request).asset(ref)
        return render(
            request,
            "asset.html",
            session,
            asset=asset,
            loudness=loudness_rows(asset),
            timeline=Markup(timeline_svg(asset)),
            findings=list(asset.qc.get("findings", []) or []),
            checks=[(c.value, c.name_zh) for c in ReviewCheck],
            done=DONE.get(done, ""),
        )

    @router.post("/console/assets/{ref}/review")
    def asset_review(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.ASSETS_REVIEW))],
        ref: str,
        decision: Annotated[str, Form(max_length=20)],
        comment: Annotated[str, Form(max_length=4000)] = "",
        political: Annotated[bool, Form()] = False,
        scientific: Annotated[bool, Form()] = False,
        normative: Annotated[bool, Form()] = False,
    ) -> Response:
        services = web(request)
        checks: Mapping[str, bool] = {
            "political": political,
            "scientific": scientific,
            "normative": normative,
        }
        try:
            asset = services.review(
                ref,
                approve=decision == "approve",
                checks=checks,
                comment=comment,
                actor=actor(request, session),
            )
        except ValueError as exc:  # BadInputError: say it on the page, keep what was typed
            shown = services.asset(ref)
            return render(
                request,
                "asset.html",
                session,
                status_code=400,
                asset=shown,
                loudness=loudness_rows(shown),
                timeline=Markup(timeline_svg(shown)),
                findings=list(shown.qc.get("findings", []) or []),
                checks=[(c.value, c.name_zh) for c in ReviewCheck],
                done="",
                error=str(exc),
                comment=comment,
            )
        return RedirectResponse(
            f"/console/assets/{quote(asset.asset_id, safe='')}?done={asset.review_state.value}",
            status_code=303,
        )

    # -- as-run ---------------------------------------------------------------------------

    @router.get("/console/asrun")
    def asrun(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.ASRUN_VIEW))],
        channel: str | None = None,
        day: Annotated[date | None, Query(alias="date")] = None,
    ) -> Response:
        services = web(request)
        channel_id = channel or services.channel_ids()[0]
        shown = day or services.today()
        lines = services.asrun(channel_id, shown)
        return render(
            request,
            "asrun.html",
            session,
            lines=lines,
            channel_id=channel_id,
            day=shown,
            channels=list(services.runtime.registry),
            previous=shown - timedelta(days=1),
            following=shown + timedelta(days=1),
        )

    # -- compliance -----------------------------------------------------------------------

    @router.get("/console/compliance")
    def compliance(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.FINDINGS_VIEW))],
        channel: Annotated[str, Query(max_length=128)] = "",
        code: Annotated[str, Query(max_length=64)] = "",
        severity: Annotated[str, Query(max_length=16)] = "",
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
    ) -> Response:
        source = web(request).compliance
        query = FindingQuery(
            channel_id=channel or None,
            code=code or None,
            severity=severity or None,
            first=first,
            last=last,
        )
        found = list(source.findings(query))
        return render(
            request,
            "findings.html",
            session,
            available=source.available,
            findings=found[:1000],
            total=len(found),
            reports=list(source.reports()),
            channel=channel,
            code=code,
            severity=severity,
            first=first,
            last=last,
            severities=SEVERITIES,
            channels=web(request).channel_ids(),
        )

    @router.get("/console/compliance/findings/{finding_id}")
    def finding(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.FINDINGS_VIEW))],
        finding_id: str,
    ) -> Response:
        found = web(request).compliance.finding(finding_id)
        if found is None:
            return render(
                request, "error.html", session, status_code=404, message=f"no finding {finding_id}"
            )
        return render(request, "finding.html", session, finding=found)

    # -- partners, users, audit -----------------------------------------------------------

    def partners_page(
        request: Request, session: ConsoleSession, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        services = web(request)
        context.setdefault("created", None)
        context.setdefault("key", "")
        context.setdefault("error", "")
        return render(
            request,
            "partners.html",
            session,
            status_code=status_code,
            partners=services.partners(),
            channels=list(services.runtime.registry),
            **context,
        )

    @router.get("/console/partners")
    def partners(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.PARTNERS_MANAGE))],
        done: str = "",
    ) -> Response:
        return partners_page(request, session, done=DONE.get(done, ""))

    @router.post("/console/partners")
    async def partner_create(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.PARTNERS_MANAGE))],
    ) -> Response:
        form = await request.form()
        name = str(form.get("name") or "")[:128]
        channels = [str(c) for c in form.getlist("channels")][:100]
        services = web(request)
        try:
            partner, key = await run_in_threadpool(
                services.create_partner, name, channels, actor(request, session)
            )
        except ValueError as exc:
            return partners_page(request, session, status_code=400, error=str(exc), done="")
        # The key is shown on this response only; it is stored hashed.
        return partners_page(request, session, created=partner, key=key, done="")

    @router.post("/console/partners/{name}/revoke")
    def partner_revoke(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.PARTNERS_MANAGE))],
        name: str,
    ) -> Response:
        web(request).revoke_partner(name, actor(request, session))
        return RedirectResponse("/console/partners?done=revoked", status_code=303)

    @router.get("/console/users")
    def users(
        request: Request, session: Annotated[ConsoleSession, Depends(require(P.USERS_VIEW))]
    ) -> Response:
        return render(
            request,
            "users.html",
            session,
            users=web(request).users.list(),
            roles=[(r, sorted(p.value for p in ROLE_PERMISSIONS[r])) for r in Role],
        )

    @router.get("/console/audit")
    def audit(
        request: Request,
        session: Annotated[ConsoleSession, Depends(require(P.AUDIT_VIEW))],
        action: Annotated[str, Query(max_length=64)] = "",
        who: Annotated[str, Query(max_length=128)] = "",
    ) -> Response:
        entries = web(request).audit.list(limit=500, action=action or None, actor=who or None)
        return render(request, "audit.html", session, entries=entries, action=action, who=who)

    return router
