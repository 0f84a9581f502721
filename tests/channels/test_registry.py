from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels import SAMPLE_CHANNELS_FILE, ChannelRegistryError, load_registry, parse_output_url

GOOD = """
[network]
original_network_id = 8400

[[channel]]
id = "g03.skyclass.cn"
name_zh = "空中课堂 三年级"
name_en = "Sky Classroom Grade 3"
service_id = 103
transport_stream_id = 3
grades = ["g03"]
profile = "hd"
mux_rate = 10_000_000

[[channel.output]]
kind = "cable"
url = "udp://239.10.0.3:1234?ttl=4&rtp=1"

[[channel.output]]
kind = "5g"
url = "hls:var/hls/g03"

[[channel]]
id = "g04.skyclass.cn"
name_zh = "空中课堂 四年级"
name_en = "Sky Classroom Grade 4"
service_id = 104
transport_stream_id = 4
grades = ["g04"]
profile = "sd"
mux_rate = 5_000_000

[[channel.output]]
kind = "satellite"
url = "udp://127.0.0.1:5004?rtp=1"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "channels.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_registry_has_twelve_grades_and_a_thematic_channel() -> None:
    registry = load_registry(SAMPLE_CHANNELS_FILE)
    assert len(registry) == 13
    grades = sorted(g for c in registry for g in c.grades)
    assert grades == [f"g{n:02d}" for n in range(1, 13)]
    thematic = [c for c in registry if c.thematic]
    assert [c.id for c in thematic] == ["zt.skyclass.cn"]
    assert thematic[0].carries("g07")
    assert len({c.service_id for c in registry}) == 13


def test_good_registry_parses_outputs(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    g03 = registry.get("g03.skyclass.cn")
    cable = g03.outputs[0]
    assert (cable.host, cable.port, cable.ttl, cable.rtp) == ("239.10.0.3", 1234, 4, True)
    assert g03.outputs[1].scheme == "hls" and g03.outputs[1].path == "var/hls/g03"
    assert registry.get("g04.skyclass.cn").profile.video_codec == "mpeg2video"
    assert g03.original_network_id == 8400  # inherited from [network]


@pytest.mark.parametrize(
    ("old", "new", "field", "hint"),
    [
        ("service_id = 104", "service_id = 103", "service_id", "already used"),
        (
            'url = "udp://127.0.0.1:5004?rtp=1"',
            'url = "udp://239.10.0.3:1234"',
            "output.url",
            "already used",
        ),
        ('grades = ["g04"]', 'grades = ["g13"]', "grades", "unknown grade 'g13'"),
        ("mux_rate = 5_000_000", "mux_rate = 3_000_000", "mux_rate", "at least"),
        (
            'url = "udp://239.10.0.3:1234?ttl=4&rtp=1"',
            'url = "udp://10.1.2.3:1234"',
            "url",
            "not a multicast address",
        ),
        ('url = "hls:var/hls/g03"', 'url = "rtmp://x/y"', "url", "is not udp://"),
        (
            'url = "udp://239.10.0.3:1234?ttl=4&rtp=1"',
            'url = "udp://239.10.0.3"',
            "url",
            "needs host and port",
        ),
        ('id = "g04.skyclass.cn"', 'id = "g04"', "id", "with a dot"),
        ('profile = "sd"', 'profile = "uhd"', "profile", "unknown profile"),
        ('kind = "5g"', 'kind = "radio"', "kind", "unknown kind"),
    ],
)
def test_broken_registry_names_channel_and_field(
    tmp_path: Path,
    cli,
    old: str,
    new: str,
    field: str,
    hint: str,  # type: ignore[no-untyped-def]
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ChannelRegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert f"field '{field}'" in message and hint in message and str(path) in message
    assert "channel '" in message
    # The CLI turns it into one line on stderr and exit code 2.
    result = cli("--config", str(_config(tmp_path, path)), "channels", "list")
    assert result.code == 2
    assert f"field '{field}'" in result.stderr and "Traceback" not in result.stderr


def test_malformed_toml_is_exit_2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, GOOD + "\n[[channel]\n")
    result = cli("--config", str(_config(tmp_path, path)), "channels", "list")
    assert result.code == 2
    assert "malformed TOML" in result.stderr and str(path) in result.stderr


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ChannelRegistryError, match="SKYCLASS_CHANNELS_FILE"):
        load_registry(tmp_path / "nope.toml")


def test_output_url_parser() -> None:
    out = parse_output_url("udp://239.1.1.1:5000?ttl=2&iface=127.0.0.1")
    assert out.interface == "127.0.0.1" and out.ttl == 2 and not out.rtp
    with pytest.raises(ValueError, match="ttl"):
        parse_output_url("udp://239.1.1.1:5000?ttl=300")
    with pytest.raises(ValueError, match="unknown parameter"):
        parse_output_url("udp://239.1.1.1:5000?foo=1")


def test_channels_cli_json_shapes(cli) -> None:  # type: ignore[no-untyped-def]
    listed = cli("channels", "list", "--json")
    assert listed.code == 0, listed.stderr
    channels = json.loads(listed.stdout)
    assert len(channels) == 13
    for channel in channels:
        assert {"id", "name_zh", "service_id", "grades", "profile", "mux_rate", "outputs"} <= (
            channel.keys()
        )
    assert channels[-1]["grades"] == ["*"]
    shown = cli("channels", "show", "g03.skyclass.cn", "--json")
    assert shown.code == 0
    data = json.loads(shown.stdout)
    assert data["service_id"] == 103 and data["profile_detail"]["width"] == 1920
    assert data["outputs"][0] == {
        "kind": "cable",
        "url": "udp://239.10.0.3:1234?ttl=4&rtp=1&iface=127.0.0.1",
    }
    missing = cli("channels", "show", "g99.skyclass.cn")
    assert missing.code == 2 and "unknown channel" in missing.stderr


def _config(tmp_path: Path, channels_file: Path) -> Path:
    config = tmp_path / "skyclass.toml"
    config.write_text(f'channels_file = "{channels_file}"\n', encoding="utf-8")
    return config
