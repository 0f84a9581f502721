"""The EPG pull API over real HTTP: uvicorn on a loopback port, httpx as the partner."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import hishel
import hishel._core._spec as hishel_spec
import hishel.httpx
import httpx
import pytest
import uvicorn

from epg.api import GUIDE_MAX_AGE
from epg.guidelog import GuideLog
from epg.xmltv import check_rules, check_schema
from skyclass.web import create_app
from tests.epg.conftest import DAY, G03, G07, World, good_day


@dataclass
class Served:
    base: str
    key: str
    world: World


def _schedule_and_partner(world: World) -> str:
    world.load(world.csv([*good_day(), [G07, DAY.isoformat(), "08:00", "lesson", "L7", "", ""]]))
    _partner, key = world.services.partners.add("湖北广电", [G03], at=world.clock.now())
    return key


@contextmanager
def _uvicorn(world: World) -> Iterator[Served]:
    key = _schedule_and_partner(world)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(world), log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(base=f"http://127.0.0.1:{port}", key=key, world=world)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def served(world: World) -> Iterator[Served]:
    with _uvicorn(world) as found:
        yield found


@pytest.fixture
def served_lite(lite: World) -> Iterator[Served]:
    """For header rules, which do not depend on the database: SQLite only."""
    with _uvicorn(lite) as found:
        yield found


def test_auth_401_and_403(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=10) as client:
        first = client.get(f"/epg/{G03}.xml?from={DAY}")
        assert first.status_code == 401, first.text
        bad = client.get(f"/epg/{G03}.xml", headers={"X-API-Key": "skc_wrong"})
        assert bad.status_code == 401
        other = client.get(f"/epg/{G07}.xml", headers={"X-API-Key": served.key})
        assert other.status_code == 403
        mixed = client.get(
            f"/epg/xmltv.xml?channels={G03},{G07}", headers={"X-API-Key": served.key}
        )
        assert mixed.status_code == 403
        served.world.services.partners.revoke("湖北广电", at=served.world.clock.now())
        assert client.get(f"/epg/{G03}.xml", headers={"X-API-Key": served.key}).status_code == 401


def test_guide_gzip_etag_and_304(served: Served) -> None:
    headers = {"X-API-Key": served.key}
    with httpx.Client(base_url=served.base, timeout=10) as client:
        plain = client.get(
            f"/epg/{G03}.xml", params={"from": DAY.isoformat()},
            headers=headers | {"Accept-Encoding": "identity"},
        )  # fmt: skip
        assert plain.status_code == 200
        assert plain.headers["content-type"] == "application/xml; charset=utf-8"
        assert "content-encoding" not in plain.headers
        assert b'<title lang="zh">' in plain.content and check_rules(plain.content) == []
        # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
        assert check_schema(plain.content) == []
        etag = plain.headers["etag"]

        with client.stream(
            "GET", f"/epg/{G03}.xml", params={"from": DAY.isoformat()},
            headers=headers | {"Accept-Encoding": "gzip"},
        ) as zipped:  # fmt: skip
            raw = b"".join(zipped.iter_raw())
        assert zipped.headers["content-encoding"] == "gzip"
        assert len(raw) < len(plain.content)
        assert gzip.decompress(raw) == plain.content

        again = client.get(
            f"/epg/{G03}.xml", params={"from": DAY.isoformat()},
            headers=headers | {"If-None-Match": etag, "Accept-Encoding": "identity"},
        )  # fmt: skip
        assert again.status_code == 304 and again.content == b""

        all_of_mine = client.get(
            "/epg/xmltv.xml", params={"from": DAY.isoformat(), "days": 7}, headers=headers
        )
        assert all_of_mine.status_code == 200 and all_of_mine.headers["etag"].startswith(etag[:-1])
        assert all_of_mine.content == plain.content  # default channels: the key's own

        # A new schedule version changes the bytes, so the old ETag no longer matches.
        rows = good_day()
        rows[7][2] = "20:00:00"
        served.world.load(served.world.csv(rows, "v2.csv"))
        changed = client.get(
            f"/epg/{G03}.xml", params={"from": DAY.isoformat()},
            headers=headers | {"If-None-Match": etag},
        )  # fmt: skip
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert client.get("/epg/xmltv.xml?days=99", headers=headers).status_code == 422


def _directives(header: str) -> dict[str, str]:
    """Cache-Control as {directive: argument} (RFC 9111 §5.2: case-insensitive names)."""
    found = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        found[name.lower()] = value
    return found


def test_guides_carry_shared_cache_headers_on_200_and_304(served_lite: Served) -> None:
    # Independent judge: none here (the rules as read from RFC 9111); the hishel test
    # below shows a real shared cache obeying them.
    headers = {"X-API-Key": served_lite.key}
    url = f"/epg/{G03}.xml?from={DAY}"
    with httpx.Client(base_url=served_lite.base, timeout=10) as client:
        for encoding in ("gzip", "identity"):
            full = client.get(url, headers=headers | {"Accept-Encoding": encoding})
            assert full.status_code == 200
            not_modified = client.get(
                url,
                headers=headers
                | {"Accept-Encoding": encoding, "If-None-Match": full.headers["etag"]},
            )
            assert not_modified.status_code == 304
            for answer in (full, not_modified):
                cache = _directives(answer.headers["cache-control"])
                assert cache["max-age"] == str(GUIDE_MAX_AGE)
                # private would bar the CDN; s-maxage and must-revalidate would forbid stale use
                assert (
                    not {"private", "no-store", "no-cache", "s-maxage", "must-revalidate"}
                    & cache.keys()
                )
                assert int(cache["stale-while-revalidate"]) > 0
                assert (
                    int(cache["stale-if-error"]) >= 3600
                )  # partners keep a guide through an outage
                vary = {v.strip().lower() for v in answer.headers["vary"].split(",")}
                assert vary == {"accept-encoding", "x-api-key"}
                assert "date" in answer.headers  # a cache computes age from it
            # RFC 9110 §15.4.5: the 304 carries what the 200 would have
            for name in ("etag", "cache-control", "vary"):
                assert not_modified.headers[name] == full.headers[name], name
        # No Last-Modified is sent, so If-Modified-Since alone never yields a 304.
        assert "last-modified" not in full.headers
        dated = client.get(
            url, headers=headers | {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}
        )
        assert dated.status_code == 200 and dated.content


def test_each_encoding_is_its_own_representation_with_its_own_etag(served_lite: Served) -> None:
    # Independent judge: none (RFC 9110 §8.8.3.3 and §13.1.2 weak comparison, applied by hand).
    headers = {"X-API-Key": served_lite.key}
    url = f"/epg/{G03}.xml?from={DAY}"
    identity = {"Accept-Encoding": "identity"}
    gzipped = {"Accept-Encoding": "gzip"}
    with httpx.Client(base_url=served_lite.base, timeout=10) as client:
        plain_tag = client.get(url, headers=headers | identity).headers["etag"]
        gzip_tag = client.get(url, headers=headers | gzipped).headers["etag"]
        assert plain_tag != gzip_tag and not plain_tag.startswith("W/")

        def status(encoding: dict[str, str], if_none_match: str) -> int:
            answer = client.get(url, headers=headers | encoding | {"If-None-Match": if_none_match})
            return answer.status_code

        # A validator of the other representation does not stand for this one.
        assert status(gzipped, plain_tag) == 200
        assert status(identity, gzip_tag) == 200
        # If-None-Match compares weakly: W/"x" matches "x"; a list matches any member; * matches.
        assert status(gzipped, f"W/{gzip_tag}") == 304
        assert status(identity, f'"stale", {plain_tag}') == 304
        assert status(identity, "*") == 304


def test_a_401_or_any_refusal_is_not_cacheable(served_lite: Served) -> None:
    # Independent judge: the hishel test below (a shared cache does not store the 401/403).
    key = {"X-API-Key": served_lite.key}
    with httpx.Client(base_url=served_lite.base, timeout=10) as client:
        refusals = {
            "no key": client.get(f"/epg/{G03}.xml"),
            "wrong key": client.get(f"/epg/{G03}.xml", headers={"X-API-Key": "skc_wrong"}),
            "not its channel": client.get(f"/epg/{G07}.xml", headers=key),
            "unknown channel": client.get("/epg/nowhere.skyclass.cn.xml", headers=key),
            "days out of range": client.get(f"/epg/{G03}.xml?days=99", headers=key),
            "from out of range": client.get(f"/epg/{G03}.xml?from=1999-01-01", headers=key),
        }
    statuses = {name: answer.status_code for name, answer in refusals.items()}
    assert statuses == {
        "no key": 401,
        "wrong key": 401,
        "not its channel": 403,
        "unknown channel": 403,  # a key learns nothing of channels it was not given
        "days out of range": 422,
        "from out of range": 422,
    }
    for name, answer in refusals.items():
        assert answer.headers["cache-control"] == "no-store", name
        assert answer.json()["detail"], name  # the app's own error body is kept
    assert refusals["no key"].headers["www-authenticate"] == "X-API-Key"


class OriginLog(httpx.BaseTransport):
    """Between the cache and skyclass serve: which key reached origin, and what it got."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[tuple[str | None, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.seen.append((request.headers.get("x-api-key"), response.status_code))
        return response

    def close(self) -> None:
        self.inner.close()


@contextmanager
def skyclass_serve(world: World) -> Iterator[str]:
    """`skyclass serve` in a subprocess on the world's SQLite file, as production runs it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "SKYCLASS_DATABASE_URL": str(world.engine.url),
        "SKYCLASS_VAR_DIR": str(world.var_dir),
        "SKYCLASS_MEDIA_ROOT": str(world.media_root),
    }
    env.pop("SKYCLASS_CONFIG", None)
    log = world.tmp / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("skyclass")), "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "skyclass serve did not answer /healthz in 30 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_vary_makes_a_shared_cache_key_by_partner(
    lite: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared cache (CDN) in front of `skyclass serve` keeps each partner's guide apart.

    Independent judge: hishel, an RFC 9111 cache, run as a *shared* cache between the
    partners and a real `skyclass serve`; the origin's own guide log and the wire between
    cache and origin (OriginLog) show which pulls reached origin.
    """
    first_key = _schedule_and_partner(lite)  # 湖北广电: g03
    _b, other_channel_key = lite.services.partners.add("四川广电", [G07], at=lite.clock.now())
    _c, same_channel_key = lite.services.partners.add("湖南广电", [G03], at=lite.clock.now())
    origin = OriginLog()
    cdn = hishel.httpx.CacheTransport(
        next_transport=origin,
        storage=hishel.SqliteStorage(database_path=lite.tmp / "cdn.db"),
        rfc=hishel.CacheOptions(shared=True),
    )
    url = f"/epg/{G03}.xml?from={DAY}"
    names = {first_key: "first", other_channel_key: "other", same_channel_key: "same", None: "none"}
    with (
        skyclass_serve(lite) as base,
        httpx.Client(base_url=base, transport=cdn, timeout=10) as client,
    ):

        def pull(key: str | None) -> httpx.Response:
            answer = client.get(url, headers={"X-API-Key": key} if key else {})
            answer.read()
            return answer

        stored = pull(first_key)
        assert stored.status_code == 200 and stored.extensions["caching"]["stored"]
        # (b) a repeat by the same key within max-age is answered by the cache alone
        repeat = pull(first_key)
        assert repeat.extensions["caching"]["from_cache"] and repeat.content == stored.content
        assert len(origin.seen) == 1
        # (a) another key is never given the stored copy: origin decides, and refuses
        refused = pull(other_channel_key)
        assert refused.status_code == 403 and not refused.extensions["caching"]["stored"]
        keyless = pull(None)
        assert keyless.status_code == 401 and not keyless.extensions["caching"]["stored"]
        # a second partner allowed the channel reaches origin too (its key, its log entry)
        allowed = pull(same_channel_key)
        assert allowed.status_code == 200 and allowed.content == stored.content
        # (c) once max-age has passed, the cache revalidates and origin answers 304. hishel
        # 2.0 reads its clock as time.time() in hishel._core._spec: moving that clock on
        # instead of sleeping a minute keeps this test in seconds (hence the <2.1 pin).
        later = time.time() + GUIDE_MAX_AGE + 2
        monkeypatch.setattr(hishel_spec, "time", SimpleNamespace(time=lambda: later))
        revalidated = pull(first_key)
        assert revalidated.extensions["caching"]["revalidated"]
        assert revalidated.status_code == 200 and revalidated.content == stored.content
    seen = [(names[key], status) for key, status in origin.seen]
    assert seen == [("first", 200), ("other", 403), ("none", 401), ("same", 304), ("first", 304)]
    logged = [p.partner for p in GuideLog(lite.sessions()).covering([G03], DAY, DAY)]
    assert logged == ["湖北广电", "湖南广电", "湖北广电"]  # what origin served, by partner
