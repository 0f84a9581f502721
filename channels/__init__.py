"""The channel registry: grade channels, their house profile and outputs (channels.toml)."""

from channels.profiles import PROFILES, HouseProfile, profile_by_name
from channels.registry import (
    SAMPLE_CHANNELS_FILE,
    Channel,
    ChannelRegistry,
    ChannelRegistryError,
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
    "HouseProfile",
    "Network",
    "Output",
    "OutputKind",
    "load_registry",
    "parse_output_url",
    "profile_by_name",
]
