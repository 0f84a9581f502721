"""/metrics in the Prometheus text format (prometheus-client), read at scrape time.

Per channel: on-air state (one series per state, 1 for the current one), fallback
count, output bitrate, TR 101 290 error counts, as-run lag; plus the ingest queue
and the asset library by review state. Values come from the same LiveStatusSource
as the dashboard, so the two never disagree.

Access: a logged-in console session (any role), or ``Authorization: Bearer TOKEN``
when the server was started with a metrics token (`skyclass serve --metrics-token`
or SKYCLASS_METRICS_TOKEN) for Prometheus to use.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
import hmac
import logging
from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from skyclass.web.auth import current_session, web
from skyclass.web.errors import LoginRequired
from skyclass.web.multiviewer import OnAirState
from skyclass.web.services import WebServices

logger = logging.getLogger(__name__)


class StationCollector(Collector):
    """Builds every metric family from a fresh status snapshot on each scrape."""

    def __init__(self, services: WebServices) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        statuses = self.services.status.snapshot()
        state = GaugeMetricFamily(
            "skyclass_channel_on_air_state",
            "1 for the channel's current state (on_air, filler, slate, off), else 0",
            labels=["channel", "state"],
        )
        fallbacks = CounterMetricFamily(
            "skyclass_channel_fallbacks",
            "Events substituted by filler or slate (as-run outcome 'substituted')",
            labels=["channel"],
        )
        bitrate = GaugeMetricFamily(
            "skyclass_channel_output_bitrate_bps",
            "Measured output bitrate (HLS segment bytes over their duration)",
            labels=["channel"],
        )
        mux_rate = GaugeMetricFamily(
            "skyclass_channel_mux_rate_bps", "Configured CBR mux rate", labels=["channel"]
        )
        output_age = GaugeMetricFamily(
            "skyclass_channel_output_age_seconds",
            "Seconds since the channel's output last grew",
            labels=["channel"],
        )
        tr = GaugeMetricFamily(
            "skyclass_channel_tr101290_errors",
            "TR 101 290 error count per check, from the live TS monitor's latest report",
            labels=["channel", "check", "name", "priority"],
        )
        lag = GaugeMetricFamily(
            "skyclass_channel_asrun_lag_seconds",
            "How far the as-run table lags behind the channel's journal (seconds of air)",
            labels=["channel"],
        )
        unsynced = GaugeMetricFamily(
            "skyclass_channel_asrun_unsynced_records",
            "Journal records not yet copied into the as-run table",
            labels=["channel"],
        )
        legs_up = GaugeMetricFamily(
            "skyclass_channel_merge_legs_up",
            "Main/backup legs the ST 2022-7 receiver is receiving (of 2)",
            labels=["channel"],
        )
        changeovers = CounterMetricFamily(
            "skyclass_channel_merge_changeovers",
            "Main/backup changeovers seen by the ST 2022-7 receiver",
            labels=["channel"],
        )
        merged_lost = CounterMetricFamily(
            "skyclass_channel_merge_lost_datagrams",
            "RTP datagrams missing on both legs (the merged output lost them)",
            labels=["channel"],
        )
        for s in statuses:
            if s.merge is not None:
                legs = s.merge.get("legs", [])
                legs_up.add_metric([s.channel_id], float(sum(1 for leg in legs if leg.get("up"))))
                changeovers.add_metric([s.channel_id], float(s.merge.get("changeovers", 0)))
                merged_lost.add_metric([s.channel_id], float(s.merge.get("merged_lost", 0)))
            for kind in OnAirState:
                state.add_metric([s.channel_id, kind.value], 1.0 if s.state is kind else 0.0)
            fallbacks.add_metric([s.channel_id], float(s.fallbacks_total))
            mux_rate.add_metric([s.channel_id], float(s.mux_rate_bps))
            if s.output_bitrate_bps is not None:
                bitrate.add_metric([s.channel_id], s.output_bitrate_bps)
            if s.output_age_seconds is not None:
                output_age.add_metric([s.channel_id], s.output_age_seconds)
            for count in s.tr101290:
                tr.add_metric(
                    [s.channel_id, count.check_id, count.name, str(count.priority)],
                    float(count.count),
                )
            if s.asrun_lag_seconds is not None:
                lag.add_metric([s.channel_id], s.asrun_lag_seconds)
            if s.asrun_unsynced is not None:
                unsynced.add_metric([s.channel_id], float(s.asrun_unsynced))
        yield from (state, fallbacks, bitrate, mux_rate, output_age, tr, lag, unsynced)
        yield from (legs_up, changeovers, merged_lost)

        queue = GaugeMetricFamily(
            "skyclass_ingest_queue_jobs", "Ingest jobs by state", labels=["state"]
        )
        for name, value in sorted(self.services.ingest_queue.counts().items()):
            queue.add_metric([name], float(value))
        yield queue

        library = GaugeMetricFamily(
            "skyclass_assets", "Assets in the library by review state", labels=["review_state"]
        )
        try:
            counts = Counter(a.review_state.value for a in self.services.epg.assets.list())
        except Exception as exc:  # a scrape must not fail on the database
            logger.warning("metrics: asset library unreadable: %s", exc)
            counts = Counter()
        for name in ("pending", "approved", "rejected"):
            library.add_metric([name], float(counts.get(name, 0)))
        yield library


def make_router(token: str | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    registries: dict[int, CollectorRegistry] = {}

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        bearer = request.headers.get("authorization", "")
        allowed = bool(
            token
            and bearer.startswith("Bearer ")
            and hmac.compare_digest(bearer[7:].encode(), token.encode())
        )
        if not allowed and await current_session(request) is None:
            raise LoginRequired(
                "metrics need a console login or `Authorization: Bearer TOKEN` "
                "(skyclass serve --metrics-token)"
            )
        services = web(request)
        registry = registries.get(id(services))
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(StationCollector(services))
            registries[id(services)] = registry
        from starlette.concurrency import run_in_threadpool

        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
