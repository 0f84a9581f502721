"""Read and validate channels.toml: one [[channel]] table per grade channel.

Every problem names the file, the channel and the field, and says what to do;
the CLI turns ChannelRegistryError into exit code 2.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.ads import (
    DEFAULT_AD_POLICY,
    LEGAL_AD_MINUTES_PER_HOUR,
    MINORS_BANNED,
    AdCategory,
    AdPolicy,
)
from channels.errors import ChannelRegistryError
from channels.profiles import HouseProfile, profile_by_name
from core.errors import BadInputError
from grading.errors import UnknownGradeError
from grading.grades import Grade, grade_by_code

SAMPLE_CHANNELS_FILE = Path(__file__).with_name("channels.toml")

ALL_GRADES = "*"


class OutputKind(StrEnum):
    CABLE = "cable"  # 有线: UDP multicast
    SATELLITE = "satellite"  # 直播卫星 uplink: UDP/RTP unicast or multicast
    FIVE_G = "5g"  # 广电5G broadcast: HLS
    FILE = "file"  # recording / tests


@dataclass(frozen=True, kw_only=True)
class Output:
    kind: OutputKind
    url: str
    scheme: str  # "udp" | "hls" | "file"
    host: str | None = None
    port: int | None = None
    ttl: int = 16
    rtp: bool = False
    interface: str | None = None  # local address to send multicast from
    path: str | None = None  # hls directory or file path

    @property
    def address_key(self) -> str:
        """What two outputs must not share."""
        if self.scheme == "udp":
            return f"udp://{self.host}:{self.port}"
        return f"{self.scheme}:{Path(self.path or '').resolve()}"

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "url": self.url}


@dataclass(frozen=True, kw_only=True)
class Network:
    name_zh: str = "空中课堂"
    provider_zh: str = "空中课堂播控中心"
    original_network_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Channel:
    id: str  # XMLTV-style, e.g. g03.skyclass.cn
    name_zh: str
    name_en: str
    service_id: int
    transport_stream_id: int
    original_network_id: int
    grades: tuple[str, ...]  # grade codes carried
    thematic: bool  # 专题教育 channel: carries every grade
    profile: HouseProfile
    mux_rate: int
    outputs: tuple[Output, ...]
    filler: tuple[str, ...] = ()  # asset or lesson ids of the filler pool, in order
    ad_policy: AdPolicy = DEFAULT_AD_POLICY  # [channel.ad_policy]: ad minutes, banned categories

    def carries(self, grade_code: str) -> bool:
        return self.thematic or grade_code in self.grades

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "service_id": self.service_id,
            "transport_stream_id": self.transport_stream_id,
            "original_network_id": self.original_network_id,
            "grades": [ALL_GRADES] if self.thematic else list(self.grades),
            "thematic": self.thematic,
            "profile": self.profile.name,
            "mux_rate": self.mux_rate,
            "outputs": [o.as_json() for o in self.outputs],
            "filler": list(self.filler),
            "ad_policy": self.ad_policy.as_json(),
        }


@dataclass(frozen=True)
class ChannelRegistry:
    source: Path
    network: Network
    channels: tuple[Channel, ...] = field(default_factory=tuple)

    def get(self, channel_id: str) -> Channel:
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        known = ", ".join(c.id for c in self.channels)
        raise ChannelRegistryError(f"unknown channel {channel_id!r}: known channels are {known}")

    def find(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def __iter__(self) -> Any:
        return iter(self.channels)

    def __len__(self) -> int:
        return len(self.channels)


class _Problem:
    """Builds messages that say file, channel, field and what to do."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def __call__(self, where: str, fieldname: str, what: str) -> ChannelRegistryError:
        return ChannelRegistryError(f"{self.source}: {where}, field '{fieldname}': {what}")


_OUTPUT_SCHEMES = {
    OutputKind.CABLE: ("udp",),
    OutputKind.SATELLITE: ("udp",),
    OutputKind.FIVE_G: ("hls",),
    OutputKind.FILE: ("file",),
}


def parse_output_url(url: str, kind: OutputKind = OutputKind.FILE) -> Output:
    """Parse `udp://host:port?ttl=N&rtp=1&iface=ADDR`, `hls:DIR` or `file:PATH`.

    Raises ValueError with the reason; the registry wraps it with its location.
    """
    if url.startswith("udp://"):
        parts = urlsplit(url)
        if not parts.hostname or parts.port is None:
            raise ValueError(f"{url!r} needs host and port, like udp://239.10.0.3:1234")
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            raise ValueError(f"{url!r}: host must be an IP address") from None
        query = parse_qs(parts.query, strict_parsing=False)
        unknown = set(query) - {"ttl", "rtp", "iface"}
        if unknown:
            raise ValueError(f"{url!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
        ttl = int(query.get("ttl", ["16"])[0])
        if not 0 <= ttl <= 255:
            raise ValueError(f"{url!r}: ttl must be 0–255")
        rtp = query.get("rtp", ["0"])[0] in ("1", "true", "yes")
        iface = query.get("iface", [None])[0]
        return Output(
            kind=kind,
            url=url,
            scheme="udp",
            host=parts.hostname,
            port=parts.port,
            ttl=ttl,
            rtp=rtp,
            interface=iface,
        )
    for scheme in ("hls", "file"):
        if url.startswith(scheme + ":"):
            path = url[len(scheme) + 1 :]
            if not path:
                raise ValueError(f"{url!r} needs a path, like {scheme}:var/{scheme}/g03")
            return Output(kind=kind, url=url, scheme=scheme, path=path)
    raise ValueError(f"{url!r} is not udp://HOST:PORT, hls:DIR or file:PATH")


def _int_field(raw: dict[str, Any], key: str, problem: _Problem, where: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise problem(where, key, f"must be a whole number, got {value!r}")
    return value


def _str_field(raw: dict[str, Any], key: str, problem: _Problem, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise problem(where, key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_channel(raw: dict[str, Any], index: int, network: Network, problem: _Problem) -> Channel:
    where = f"channel #{index + 1}"
    channel_id = _str_field(raw, "id", problem, where)
    where = f"channel {channel_id!r}"
    if "." not in channel_id or channel_id.startswith(".") or channel_id.endswith("."):
        raise problem(where, "id", "must be XMLTV-style with a dot, like g03.skyclass.cn")
    name_zh = _str_field(raw, "name_zh", problem, where)
    name_en = _str_field(raw, "name_en", problem, where)
    service_id = _int_field(raw, "service_id", problem, where)
    ts_id = _int_field(raw, "transport_stream_id", problem, where)
    if "original_network_id" in raw or network.original_network_id is None:
        onid = _int_field(raw, "original_network_id", problem, where)
    else:
        onid = network.original_network_id
    for key, value in (
        ("service_id", service_id),
        ("transport_stream_id", ts_id),
        ("original_network_id", onid),
    ):
        if not 1 <= value <= 0xFFFF:
            raise problem(where, key, f"must be 1–65535, got {value}")

    grades_raw = raw.get("grades")
    thematic = bool(raw.get("thematic", False))
    if not isinstance(grades_raw, list) or not all(isinstance(g, str) for g in grades_raw):
        raise problem(where, "grades", 'must be a list of grade codes like ["g03"] or ["*"]')
    grades: list[Grade] = []
    for code in grades_raw:
        if code == ALL_GRADES:
            thematic = True
            continue
        try:
            grades.append(grade_by_code(code))
        except UnknownGradeError:
            raise problem(where, "grades", f"unknown grade {code!r}: use g01…g12 or '*'") from None
    if not grades and not thematic:
        raise problem(where, "grades", "lists no grade: name grades or set thematic = true")

    profile_name = _str_field(raw, "profile", problem, where)
    try:
        profile = profile_by_name(profile_name)
    except BadInputError:
        raise problem(where, "profile", f"unknown profile {profile_name!r}: use hd or sd") from None
    mux_rate = _int_field(raw, "mux_rate", problem, where)
    if mux_rate < profile.min_mux_rate:
        raise problem(
            where,
            "mux_rate",
            f"{mux_rate} bit/s is below the {profile.min_mux_rate} bit/s the {profile.name} "
            f"profile needs: raise it to at least {profile.min_mux_rate}",
        )

    outputs_raw = raw.get("output")
    if not isinstance(outputs_raw, list) or not outputs_raw:
        raise problem(where, "output", "needs at least one [[channel.output]] table")
    outputs: list[Output] = []
    for n, out in enumerate(outputs_raw, start=1):
        out_where = f"{where} output #{n}"
        kind_raw = out.get("kind") if isinstance(out, dict) else None
        try:
            kind = OutputKind(str(kind_raw))
        except ValueError:
            raise problem(
                out_where, "kind", f"unknown kind {kind_raw!r}: use cable, satellite, 5g or file"
            ) from None
        url = _str_field(out, "url", problem, out_where)
        try:
            output = parse_output_url(url, kind)
        except ValueError as exc:
            raise problem(out_where, "url", str(exc)) from None
        if output.scheme not in _OUTPUT_SCHEMES[kind]:
            wanted = " or ".join(f"{s}:" for s in _OUTPUT_SCHEMES[kind])
            raise problem(out_where, "url", f"a {kind.value} output needs a {wanted} URL")
        if kind is OutputKind.CABLE and not ipaddress.ip_address(output.host or "").is_multicast:
            raise problem(
                out_where,
                "url",
                f"cable output {output.host} is not a multicast address: use 224.0.0.0/4, "
                "e.g. 239.10.0.3",
            )
        outputs.append(output)

    filler = raw.get("filler", [])
    if not isinstance(filler, list) or not all(isinstance(f, str) for f in filler):
        raise problem(where, "filler", "must be a list of asset or lesson ids")

    ad_policy = _parse_ad_policy(raw.get("ad_policy", {}), problem, where)

    return Channel(
        id=channel_id,
        name_zh=name_zh,
        name_en=name_en,
        service_id=service_id,
        transport_stream_id=ts_id,
        original_network_id=onid,
        grades=tuple(g.code for g in grades),
        thematic=thematic,
        profile=profile,
        mux_rate=mux_rate,
        outputs=tuple(outputs),
        filler=tuple(filler),
        ad_policy=ad_policy,
    )


def _parse_ad_policy(raw: object, problem: _Problem, where: str) -> AdPolicy:
    """[channel.ad_policy]: max_minutes_per_hour (0–12) and banned_categories (added to the
    categories banned for minors, which no channel can lift)."""
    if not isinstance(raw, dict):
        raise problem(where, "ad_policy", "must be a table: [channel.ad_policy]")
    unknown = set(raw) - {"max_minutes_per_hour", "banned_categories"}
    if unknown:
        raise problem(
            where,
            f"ad_policy.{sorted(unknown)[0]}",
            "unknown setting: use max_minutes_per_hour or banned_categories",
        )
    minutes = raw.get("max_minutes_per_hour", LEGAL_AD_MINUTES_PER_HOUR)
    if (
        not isinstance(minutes, int | float)
        or isinstance(minutes, bool)
        or not 0 <= minutes <= LEGAL_AD_MINUTES_PER_HOUR
    ):
        raise problem(
            where,
            "ad_policy.max_minutes_per_hour",
            f"must be a number of minutes from 0 to {LEGAL_AD_MINUTES_PER_HOUR:g} "
            f"(SARFT Order 61 allows at most {LEGAL_AD_MINUTES_PER_HOUR:g}), got {minutes!r}",
        )
    listed = raw.get("banned_categories", [])
    if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
        raise problem(where, "ad_policy.banned_categories", "must be a list of category names")
    banned = set(MINORS_BANNED)
    for name in listed:
        try:
            banned.add(AdCategory.parse(name))
        except ValueError as exc:
            raise problem(where, "ad_policy.banned_categories", str(exc)) from None
    return AdPolicy(max_minutes_per_hour=float(minutes), banned=frozenset(banned))


def load_registry(path: Path | str) -> ChannelRegistry:
    """Load and validate the registry; raise ChannelRegistryError on the first problem."""
    source = Path(path)
    problem = _Problem(source)
    try:
        text = source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ChannelRegistryError(
            f"{source}: no such channels file: set SKYCLASS_CHANNELS_FILE to your channels.toml"
        ) from None
    except UnicodeDecodeError as exc:
        raise ChannelRegistryError(
            f"{source}: not UTF-8 ({exc.reason}): save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ChannelRegistryError(f"{source}: malformed TOML: {exc}") from None

    net_raw = data.get("network", {})
    if not isinstance(net_raw, dict):
        raise problem("[network]", "network", "must be a table")
    network = Network(
        name_zh=str(net_raw.get("name_zh", Network.name_zh)),
        provider_zh=str(net_raw.get("provider_zh", Network.provider_zh)),
        original_network_id=net_raw.get("original_network_id"),
    )
    raw_channels = data.get("channel")
    if not isinstance(raw_channels, list) or not raw_channels:
        raise problem("top level", "channel", "no [[channel]] tables: add at least one channel")

    channels: list[Channel] = []
    ids: dict[str, str] = {}
    service_ids: dict[tuple[int, int, int], str] = {}
    addresses: dict[str, str] = {}
    for index, raw in enumerate(raw_channels):
        if not isinstance(raw, dict):
            raise problem(f"channel #{index + 1}", "channel", "must be a table")
        channel = _parse_channel(raw, index, network, problem)
        where = f"channel {channel.id!r}"
        if channel.id in ids:
            raise problem(where, "id", "is used twice: give each channel its own id")
        ids[channel.id] = channel.id
        triplet = (channel.original_network_id, channel.transport_stream_id, channel.service_id)
        # Service ids must be unique across the network: receivers key on them.
        for (onid, _ts, sid), owner in service_ids.items():
            if onid == triplet[0] and sid == channel.service_id:
                raise problem(
                    where,
                    "service_id",
                    f"{channel.service_id} is already used by channel {owner!r}: "
                    "give each channel its own service_id",
                )
        service_ids[triplet] = channel.id
        for output in channel.outputs:
            user = addresses.get(output.address_key)
            if user is not None:
                raise problem(
                    where,
                    "output.url",
                    f"{output.url} is already used by channel {user!r}: "
                    "each output needs its own address",
                )
            addresses[output.address_key] = channel.id
        channels.append(channel)
    return ChannelRegistry(source=source, network=network, channels=tuple(channels))
