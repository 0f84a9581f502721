"""The EPG pull API for provincial broadcasters (FastAPI router).

GET /epg/{channel_id}.xml and GET /epg/xmltv.xml?channels=…&days=… return
XMLTV for the channels a partner's X-API-Key may see: 401 without a valid key,
403 for any other channel. Responses carry a strong ETag of the XML bytes
(If-None-Match → 304) and are gzipped per response when the client accepts it.

Guides may sit behind a CDN (RFC 9111 shared cache): `Vary: X-API-Key` keys
every stored copy by partner, every refusal is `no-store`, and the freshness
directives are explained in docs/guides/epg-partner.md §3.

Rendered guides are cached by (channels, first day, days, schedule stamp): the
stamp is the newest schedule version, so any load or rollback misses the cache.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# runtime, and the key dependency is a closure it could not resolve from a string.
import gzip
import inspect
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute

from epg.cells import FIRST_DAY, LAST_DAY
from epg.context import EpgServices
from epg.guidelog import GuideKind, publications
from epg.partners import Partner
from epg.schedule import broadcast_date_of

logger = logging.getLogger(__name__)

XML_MEDIA_TYPE = "application/xml; charset=utf-8"
MAX_DAYS = 14

# A guide changes only when a schedule is loaded or rolled back; partners pull once a
# minute. No `private` (it bars the CDN), no `public` (only needed to store responses to
# requests with Authorization, RFC 9111 §5.2.2.9, which this API never reads), no
# `s-maxage`/`must-revalidate` (they forbid the stale copies below, RFC 9111 §4.2.4).
GUIDE_MAX_AGE = 60
GUIDE_CACHE_CONTROL = f"max-age={GUIDE_MAX_AGE}, stale-while-revalidate=30, stale-if-error=86400"
# Each partner sees its own channels: a shared cache keys stored copies by the key
# (RFC 9111 §4.1), so one partner's guide never answers another key or none at all.
GUIDE_VARY = "Accept-Encoding, X-API-Key"
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, kw_only=True)
class _Rendered:
    body: bytes
    gzipped: bytes
    etag: str
    versions: Mapping[tuple[str, date], int]  # what the guide log records of each serve


class GuideCache:
    """A small thread-safe LRU of rendered guides (size 0 turns it off)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, ...], _Rendered] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> _Rendered | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[object, ...], item: _Rendered) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


# RFC 9110 §12.4.2: a qvalue is 0 to 1 with at most three decimals.
_QVALUE = re.compile(r"^q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def _accepts_gzip(header: str | None) -> bool:
    """Whether Accept-Encoding allows gzip. A malformed entry is ignored, never a 500."""
    for part in (header or "")[:1024].split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower().replace(" ", "")
        if not q:
            return True
        match = _QVALUE.match(q)
        if match is None:
            continue  # `gzip;q=abc`: not a valid preference, so not one to honour
        return float(match[1]) > 0
    return False


def _first_day(value: date | None, default: date) -> date:
    """The `from` query parameter, inside the broadcast days a schedule may hold."""
    if value is None:
        return default
    last = LAST_DAY - timedelta(days=MAX_DAYS)
    if not FIRST_DAY <= value <= last:
        raise HTTPException(422, f"from must be a day between {FIRST_DAY} and {last}")
    return value


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against the selected representation's tag.

    The gzip and identity bodies are different representations with different strong
    tags (RFC 9110 §8.8.3.3), so `"x"` does not revalidate the gzip body nor `"x-gzip"`
    the identity one: a cache holding only the other one would find no stored response
    to freshen with the 304 (RFC 9111 §4.3.4).
    """
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/")
        if tag == "*" or tag == etag:
            return True
    return False


def _handler_for(request: Request, exc: Exception) -> Callable[..., Any] | None:
    """The app's own exception handler for exc (looked up along its MRO, as Starlette does)."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]  # type: ignore[no-any-return]
    return None


class _NoStoreRefusals(APIRoute):
    """Every refusal from a guide route says `no-store` (RFC 9111 §5.2.2.5).

    401, 403 and 422 are not heuristically cacheable, but 404 is (RFC 9110 §15.1) and
    CDNs can be told to keep errors: none may be kept. The app's own handler renders
    the error, so its body and headers (WWW-Authenticate) stay as everywhere else.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        route_handler = super().get_route_handler()

        async def refusing_uncacheably(request: Request) -> Response:
            try:
                return await route_handler(request)
            except Exception as exc:
                handler = _handler_for(request, exc)
                if handler is None:
                    raise
                response = handler(request, exc)
                if inspect.isawaitable(response):
                    response = await response
                assert isinstance(response, Response)
                response.headers.update(NO_STORE)
                return response

        return refusing_uncacheably


def make_router(services: EpgServices, *, cache_size: int = 64) -> APIRouter:
    router = APIRouter(prefix="/epg", tags=["epg"], route_class=_NoStoreRefusals)
    cache = GuideCache(cache_size)

    def partner(
        x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    ) -> Partner:
        if not x_api_key:
            raise HTTPException(
                401,
                "send your partner key in the X-API-Key header",
                headers={"WWW-Authenticate": "X-API-Key"},
            )
        found = services.partners.authenticate(x_api_key)
        if found is None:
            raise HTTPException(
                401,
                "unknown or revoked API key: ask the 播控中心 for a new one",
                headers={"WWW-Authenticate": "X-API-Key"},
            )
        return found

    def guide(
        request: Request, who: Partner, channel_ids: list[str], first: date | None, days: int
    ) -> Response:
        channel_ids = list(dict.fromkeys(channel_ids))  # `?channels=a,a,a,…` renders a once
        denied = [c for c in channel_ids if not who.may_see(c)]
        if denied:
            raise HTTPException(403, f"key of {who.name} may not see {', '.join(denied)}")
        unknown = [c for c in channel_ids if services.runtime.registry.find(c) is None]
        if unknown:
            raise HTTPException(404, f"no channel {', '.join(unknown)}")
        runtime = services.runtime
        start = _first_day(first, broadcast_date_of(runtime.clock.now(), runtime.zone))
        key = (tuple(sorted(set(channel_ids))), start, days, services.schedules.stamp())
        rendered = cache.get(key)
        if rendered is None:
            document = services.xmltv.export(channel_ids, start, days)
            rendered = _Rendered(
                body=document.body,
                gzipped=gzip.compress(document.body, compresslevel=6, mtime=0),
                etag=document.etag,
                versions=document.versions,
            )
            cache.put(key, rendered)
        # Guides are part of the record: which schedule versions this partner was shown, when.
        services.guides.record(
            publications(
                GuideKind.XMLTV,
                rendered.versions,
                channel_ids=channel_ids,
                first_day=start,
                last_day=start + timedelta(days=days - 1),
                document=rendered.etag.strip('"'),
                at=runtime.clock.now(),
                partner=who.name,
            )
        )
        use_gzip = _accepts_gzip(request.headers.get("accept-encoding"))
        etag = rendered.etag[:-1] + '-gzip"' if use_gzip else rendered.etag
        # The 304 carries the same ETag, Vary and Cache-Control as the 200 it stands for
        # (RFC 9110 §15.4.5), so a cache that revalidates gets a fresh max-age from it.
        headers = {"ETag": etag, "Vary": GUIDE_VARY, "Cache-Control": GUIDE_CACHE_CONTROL}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        return Response(
            content=rendered.gzipped if use_gzip else rendered.body,
            media_type=XML_MEDIA_TYPE,
            headers=headers,
        )

    @router.get("/xmltv.xml", response_class=Response)
    def all_channels(
        request: Request,
        who: Annotated[Partner, Depends(partner)],
        channels: Annotated[str | None, Query(description="ids, comma separated")] = None,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
        start: Annotated[date | None, Query(alias="from")] = None,
    ) -> Response:
        """XMLTV for several channels (default: every channel the key may see)."""
        wanted = [c.strip() for c in channels.split(",") if c.strip()] if channels else []
        return guide(request, who, wanted or list(who.channels), start, days)

    @router.get("/{channel_id}.xml", response_class=Response)
    def one_channel(
        request: Request,
        channel_id: str,
        who: Annotated[Partner, Depends(partner)],
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
        start: Annotated[date | None, Query(alias="from")] = None,
    ) -> Response:
        """XMLTV for one channel."""
        return guide(request, who, [channel_id], start, days)

    return router
