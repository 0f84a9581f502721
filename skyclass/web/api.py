"""The console's JSON API under /api/: everything the pages do, described at /openapi.json.

Log in with ``POST /api/login`` (JSON): the answer sets the session cookie and
carries the CSRF token that every POST must send back as ``X-CSRF-Token``.
Partner API keys do not open anything here (they are for /epg/… only).
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ingest import AssetKind, ReviewState
from skyclass.web.auth import (
    ROLE_PERMISSIONS,
    Permission,
    actor,
    clear_session_cookie,
    client_address,
    logged_in,
    require,
    set_session_cookie,
    web,
)
from skyclass.web.findings import FindingQuery
from skyclass.web.qcview import timeline_svg
from skyclass.web.sessions import ConsoleSession
from skyclass.web.uploads import StagedUpload, discard, stage_schedule

logger = logging.getLogger(__name__)

P = Permission
Json = dict[str, Any]
NAME = r"^[^\x00-\x1f\x7f]+$"  # printable: names and ids never carry control characters


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    password: str = Field(min_length=1, max_length=1024)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    political: bool = Field(description="政治性 passed")
    scientific: bool = Field(description="科学性 passed")
    normative: bool = Field(description="规范性 passed")
    comment: str = Field(default="", max_length=4000)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(min_length=1, max_length=128, pattern=NAME)
    date: date
    to: int | None = Field(default=None, ge=1, le=2**31 - 1)


class PartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=NAME)
    channels: list[str] = Field(min_length=1, max_length=100)


def _session_json(session: ConsoleSession) -> Json:
    return {
        "user": session.user.name,
        "role": session.role.value,
        "role_zh": session.role.name_zh,
        "csrf_token": session.csrf_token,
        "expires_at": session.expires_at.isoformat(),
        "permissions": sorted(p.value for p in ROLE_PERMISSIONS[session.role]),
    }


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["console"])

    # -- session --------------------------------------------------------------------------

    @router.post("/login", responses={401: {}, 415: {}, 429: {}})
    def login(request: Request, body: LoginRequest) -> JSONResponse:
        """Log in: sets the session cookie; the answer holds the CSRF token for changes."""
        services = web(request)
        token, session = services.login(body.name, body.password, client_address(request))
        response = JSONResponse(_session_json(session))
        set_session_cookie(
            request, response, token, int(services.sessions.lifetime.total_seconds())
        )
        return response

    @router.post("/logout", status_code=204, responses={401: {}, 403: {}})
    def logout(
        request: Request, session: Annotated[ConsoleSession, Depends(logged_in)]
    ) -> Response:
        web(request).logout(request.cookies.get("skyclass_session", ""), actor(request, session))
        response = Response(status_code=204)
        clear_session_cookie(request, response)
        return response

    @router.get("/session", responses={401: {}})
    def current(session: Annotated[ConsoleSession, Depends(logged_in)]) -> Json:
        """Who is logged in, the role's permissions, and the CSRF token."""
        return _session_json(session)

    # -- channels and the multiviewer -----------------------------------------------------

    @router.get("/channels", responses={401: {}, 403: {}})
    def channels(
        request: Request, _s: Annotated[ConsoleSession, Depends(require(P.DASHBOARD))]
    ) -> list[Json]:
        return [c.as_json() for c in web(request).runtime.registry]

    @router.get("/status", responses={401: {}, 403: {}})
    def status(
        request: Request, _s: Annotated[ConsoleSession, Depends(require(P.DASHBOARD))]
    ) -> list[Json]:
        """Every channel: on-air state, now/next with time remaining, bitrate, alarms."""
        return [s.as_json() for s in web(request).status.snapshot()]

    @router.get("/channels/{channel_id}/picture.jpg", responses={401: {}, 403: {}, 404: {}})
    def picture(
        request: Request,
        channel_id: str,
        _s: Annotated[ConsoleSession, Depends(require(P.DASHBOARD))],
    ) -> Response:
        """The newest keyframe of the channel's real output (JPEG, at most ~2 s old)."""
        services = web(request)
        services.check_channel(channel_id)
        shot = services.pictures.picture(channel_id)
        if shot is None:
            return JSONResponse(
                {"detail": f"no picture: {channel_id} has no output to look at (无信号)"},
                status_code=404,
            )
        return Response(
            shot.jpeg,
            media_type="image/jpeg",
            headers={
                "Cache-Control": "no-store",
                "ETag": shot.etag,
                "X-Picture-Source": shot.source,
                "X-Picture-Taken": shot.taken_at.isoformat(),
            },
        )

    # -- schedules ------------------------------------------------------------------------

    @router.get("/grid/{channel_id}", responses={401: {}, 403: {}, 404: {}})
    def grid(
        request: Request,
        channel_id: str,
        _s: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        week: Annotated[date | None, Query(description="any day of the week")] = None,
    ) -> Json:
        """The current schedule of one channel for a week (Monday to Sunday, local time)."""
        services = web(request)
        return services.week(channel_id, week or services.today()).as_json()

    @router.get("/schedule/versions", responses={401: {}, 403: {}})
    def versions(
        request: Request,
        _s: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> list[Json]:
        return [v.as_json() for v in web(request).recent_versions(limit)]

    @router.get("/schedule/versions/{number}", responses={401: {}, 403: {}, 404: {}})
    def version(
        request: Request,
        number: int,
        _s: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
    ) -> Json:
        """One version with its diff against the version before it, per channel and day."""
        return web(request).epg.schedules.version(number).as_json()

    @router.get("/schedule/history", responses={401: {}, 403: {}, 404: {}})
    def history(
        request: Request,
        _s: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_VIEW))],
        channel: Annotated[str, Query(max_length=128)],
        day: Annotated[date, Query(alias="date")],
    ) -> list[Json]:
        return [v.as_json() for v in web(request).history(channel, day)]

    def _stage(request: Request, file: UploadFile) -> StagedUpload:
        services = web(request)
        return stage_schedule(
            file.file, file.filename, file.content_type, services.staging, services.limits
        )

    @router.post("/schedule/check", responses={401: {}, 403: {}, 413: {}, 415: {}, 422: {}})
    def check(
        request: Request,
        file: Annotated[UploadFile, File(description="XLSX, CSV or JSON schedule")],
        _s: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_EDIT))],
    ) -> Json:
        """Dry run: validate the whole file and store nothing; errors name row and column."""
        upload = _stage(request, file)
        try:
            return web(request).check_schedule(upload).as_json()
        finally:
            discard(upload)

    @router.post(
        "/schedule/publish",
        status_code=201,
        responses={401: {}, 403: {}, 413: {}, 415: {}, 422: {}},
    )
    def publish(
        request: Request,
        file: Annotated[UploadFile, File(description="XLSX, CSV or JSON schedule")],
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_EDIT))],
    ) -> Json:
        """Validate and store one new version; with any error nothing is stored (422)."""
        upload = _stage(request, file)
        try:
            return web(request).publish_schedule(upload, actor(request, session)).as_json()
        finally:
            discard(upload)

    @router.post("/schedule/rollback", status_code=201, responses={401: {}, 403: {}, 404: {}})
    def rollback(
        request: Request,
        body: RollbackRequest,
        session: Annotated[ConsoleSession, Depends(require(P.SCHEDULE_EDIT))],
    ) -> Json:
        """Make an earlier version current again (stored as a new version)."""
        return (
            web(request)
            .rollback(body.channel, body.date, body.to, actor(request, session))
            .as_json()
        )

    # -- assets ---------------------------------------------------------------------------

    @router.get("/assets", responses={401: {}, 403: {}})
    def assets(
        request: Request,
        _s: Annotated[ConsoleSession, Depends(require(P.ASSETS_VIEW))],
        q: Annotated[str, Query(max_length=200)] = "",
        kind: AssetKind | None = None,
        grade: Annotated[str, Query(max_length=8)] = "",
        state: ReviewState | None = None,
        subject: Annotated[str, Query(max_length=64)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Json]:
        """Search (id, title, subject, teacher, school, unit) and filter the asset library."""
        found = web(request).search_assets(
            q=q, kind=kind, grade=grade or None, state=state, subject=subject or None
        )
        return [a.as_json() for a in found[:limit]]

    @router.get("/assets/{ref}", responses={401: {}, 403: {}, 404: {}})
    def asset(
        request: Request, ref: str, _s: Annotated[ConsoleSession, Depends(require(P.ASSETS_VIEW))]
    ) -> Json:
        """Metadata, QC report (loudness, black/freeze/silence), reviews, attachments."""
        return web(request).asset(ref).as_json()

    @router.get("/assets/{ref}/qc-timeline.svg", responses={401: {}, 403: {}, 404: {}})
    def qc_timeline(
        request: Request, ref: str, _s: Annotated[ConsoleSession, Depends(require(P.ASSETS_VIEW))]
    ) -> Response:
        """The QC timeline picture: black, freeze and silence segments over the duration."""
        return Response(timeline_svg(web(request).asset(ref)), media_type="image/svg+xml")

    @router.get("/assets/{ref}/attachments/{index}", responses={401: {}, 403: {}, 404: {}})
    def attachment(
        request: Request,
        ref: str,
        index: int,
        _s: Annotated[ConsoleSession, Depends(require(P.ASSETS_VIEW))],
    ) -> Response:
        """Download one file of the resource package (学习任务单, 课后练习)."""
        found = web(request).asset(ref)
        if not 0 <= index < len(found.attachments) or not found.attachments[index].path.is_file():
            return JSONResponse(
                {"detail": f"asset {found.asset_id} has no attachment #{index}"}, status_code=404
            )
        item = found.attachments[index]
        return FileResponse(item.path, media_type=item.media_type, filename=item.filename)

    @router.post("/assets/{ref}/review", responses={400: {}, 401: {}, 403: {}, 404: {}})
    def review(
        request: Request,
        ref: str,
        body: ReviewRequest,
        session: Annotated[ConsoleSession, Depends(require(P.ASSETS_REVIEW))],
    ) -> Json:
        """Sign off on 政治性、科学性、规范性 (all three to approve), or reject with a comment."""
        return (
            web(request)
            .review(
                ref,
                approve=body.approve,
                checks={
                    "political": body.political,
                    "scientific": body.scientific,
                    "normative": body.normative,
                },
                comment=body.comment,
                actor=actor(request, session),
            )
            .as_json()
        )

    # -- as-run ---------------------------------------------------------------------------

    @router.get("/asrun", responses={401: {}, 403: {}, 404: {}})
    def asrun(
        request: Request,
        _s: Annotated[ConsoleSession, Depends(require(P.ASRUN_VIEW))],
        channel: Annotated[str, Query(max_length=128)],
        day: Annotated[date | None, Query(alias="date")] = None,
    ) -> list[Json]:
        """What aired on a channel and broadcast day (database copy plus newer journal lines)."""
        services = web(request)
        return [
            {**line.record.as_json(), "seq": line.seq, "synced": line.synced, "hash": line.hash}
            for line in services.asrun(channel, day or services.today())
        ]

    # -- compliance -----------------------------------------------------------------------

    @router.get("/compliance/findings", responses={401: {}, 403: {}})
    def findings(
        request: Request,
        _s: Annotated[ConsoleSession, Depends(require(P.FINDINGS_VIEW))],
        channel: Annotated[str, Query(max_length=128)] = "",
        code: Annotated[str, Query(max_length=64)] = "",
        severity: Annotated[str, Query(max_length=16)] = "",
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
    ) -> list[Json]:
        query = FindingQuery(
            channel_id=channel or None,
            code=code or None,
            severity=severity or None,
            first=first,
            last=last,
        )
        return [f.as_json() for f in web(request).compliance.findings(query)]

    @router.get("/compliance/findings/{finding_id}", responses={401: {}, 403: {}, 404: {}})
    def finding(
        request: Request,
        finding_id: str,
        _s: Annotated[ConsoleSession, Depends(require(P.FINDINGS_VIEW))],
    ) -> Response:
        found = web(request).compliance.finding(finding_id)
        if found is None:
            return JSONResponse({"detail": f"no finding {finding_id!r}"}, status_code=404)
        return JSONResponse(found.as_json())

    @router.get("/compliance/reports", responses={401: {}, 403: {}})
    def reports(
        request: Request, _s: Annotated[ConsoleSession, Depends(require(P.FINDINGS_VIEW))]
    ) -> list[Json]:
        return [r.as_json() for r in web(request).compliance.reports()]

    @router.get("/compliance/reports/{name}", responses={401: {}, 403: {}, 404: {}})
    def report(
        request: Request,
        name: str,
        _s: Annotated[ConsoleSession, Depends(require(P.FINDINGS_VIEW))],
    ) -> Response:
        """Download a report (HTML, CSV, BXF)."""
        found = next((r for r in web(request).compliance.reports() if r.name == name), None)
        if found is None:
            return JSONResponse({"detail": f"no report {name!r}"}, status_code=404)
        return FileResponse(found.path, media_type=found.media_type, filename=found.name)

    # -- partners, users, audit -----------------------------------------------------------

    @router.get("/partners", responses={401: {}, 403: {}})
    def partners(
        request: Request, _s: Annotated[ConsoleSession, Depends(require(P.PARTNERS_MANAGE))]
    ) -> list[Json]:
        return [p.as_json() for p in web(request).partners()]

    @router.post("/partners", status_code=201, responses={400: {}, 401: {}, 403: {}})
    async def partner_create(
        request: Request,
        body: PartnerCreate,
        session: Annotated[ConsoleSession, Depends(require(P.PARTNERS_MANAGE))],
    ) -> Json:
        """Issue a key for a partner (省级台). The key is in this answer only: keep it."""
        partner, key = await run_in_threadpool(
            web(request).create_partner, body.name, body.channels, actor(request, session)
        )
        return {**partner.as_json(), "key": key}

    @router.post("/partners/{name}/revoke", responses={400: {}, 401: {}, 403: {}, 404: {}})
    def partner_revoke(
        request: Request,
        name: str,
        session: Annotated[ConsoleSession, Depends(require(P.PARTNERS_MANAGE))],
    ) -> Json:
        return web(request).revoke_partner(name, actor(request, session)).as_json()

    @router.get("/users", responses={401: {}, 403: {}})
    def users(
        request: Request, _s: Annotated[ConsoleSession, Depends(require(P.USERS_VIEW))]
    ) -> list[Json]:
        return [u.as_json() for u in web(request).users.list()]

    @router.get("/audit", responses={401: {}, 403: {}})
    def audit(
        request: Request,
        _s: Annotated[ConsoleSession, Depends(require(P.AUDIT_VIEW))],
        action: Annotated[str, Query(max_length=64)] = "",
        actor_name: Annotated[str, Query(alias="actor", max_length=128)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Json]:
        """Who changed what, and when (newest first)."""
        entries = web(request).audit.list(
            limit=limit, action=action or None, actor=actor_name or None
        )
        return [e.as_json() for e in entries]

    return router
