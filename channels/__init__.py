"""The channel registry: grade channels, their house profile and outputs (channels.toml)."""

from channels.errors import ChannelRegistryError, ChannelsError
from channels.profiles import PROFILES, HouseProfile, profile_by_name
from channels.registry import (
    SAMPLE_CHANNELS_FILE,
    Channel,
    ChannelRegistry,
    Network,
    Output,
    OutputKind,
    load_registry,
    parse_output_url,
)

__all__ = [
    "PROFILES",
    "SAMPLE_CHANNELS_FILE",
    "Channel",
    "ChannelRegistry",
    "ChannelRegistryError",
    "ChannelsError",
    "HouseProfile",
    "Network",
    "Output",
    "OutputKind",
    "load_registry",
    "parse_output_url",
    "profile_by_name",
]
