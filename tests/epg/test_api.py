"""The EPG pull API over real HTTP: uvicorn on a loopback port, httpx as the partner."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from epg.xmltv import check_rules, check_schema
from skyclass.web import create_app
from tests.epg.conftest import DAY, G03, G07, World, good_day


@dataclass
class Served:
    base: str
    key: str
    world: World


@pytest.fixture
def served(world: World) -> Iterator[Served]:
    world.load(world.csv([*good_day(), [G07, DAY.isoformat(), "08:00", "lesson", "L7", "", ""]]))
    _partner, key = world.services.partners.add("湖北广电", [G03], at=world.clock.now())
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
            headers=headers | {"If-None-Match": etag},
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
