"""What the SDT says about one service (a grade channel)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from epg.si.errors import SiInputError

if TYPE_CHECKING:
    from channels.profiles import HouseProfile
    from channels.registry import Channel, Network


class ServiceType(IntEnum):
    """service_type values of EN 300 468 Table 87 that our house profiles produce."""

    DIGITAL_TV = 0x01  # MPEG-2 SD digital television (the SD house profile)
    MPEG2_HD = 0x11  # MPEG-2 HD digital television
    AVC_SD = 0x16  # H.264/AVC SD digital television
    AVC_HD = 0x19  # H.264/AVC HD digital television (the HD house profile)


class RunningStatus(IntEnum):
    """running_status of SDT services and EIT events (EN 300 468 Table 6)."""

    UNDEFINED = 0
    NOT_RUNNING = 1
    STARTS_SOON = 2
    PAUSING = 3
    RUNNING = 4


def service_type_for(profile: HouseProfile) -> ServiceType:
    """The service_type a receiver needs to pick the right decoder for a house profile."""
    hd = profile.height >= 720
    if profile.video_codec == "h264":
        return ServiceType.AVC_HD if hd else ServiceType.AVC_SD
    return ServiceType.MPEG2_HD if hd else ServiceType.DIGITAL_TV


@dataclass(frozen=True, kw_only=True, slots=True)
class SiService:
    """One service of the transport stream, as the SDT and EIT headers identify it."""

    service_id: int
    transport_stream_id: int
    original_network_id: int
    name: str
    provider: str
    service_type: int = ServiceType.DIGITAL_TV
    eit_schedule: bool = True
    eit_present_following: bool = True
    running_status: int = RunningStatus.RUNNING
    free_ca: bool = False

    def __post_init__(self) -> None:
        for field in ("service_id", "transport_stream_id", "original_network_id"):
            value = getattr(self, field)
            if not 0 <= value <= 0xFFFF:
                raise SiInputError(f"SI service {self.name!r}: {field} {value} is not 16-bit")
        if not 0 <= self.service_type <= 0xFF:
            raise SiInputError(f"SI service {self.name!r}: service_type must be one byte")
        if not 0 <= self.running_status <= 7:
            raise SiInputError(f"SI service {self.name!r}: running_status must be 0..7")

    @classmethod
    def from_channel(cls, channel: Channel, network: Network) -> SiService:
        """The SDT entry for a registry channel: its Chinese name, the network's provider."""
        return cls(
            service_id=channel.service_id,
            transport_stream_id=channel.transport_stream_id,
            original_network_id=channel.original_network_id,
            name=channel.name_zh,
            provider=network.provider_zh,
            service_type=service_type_for(channel.profile),
        )
