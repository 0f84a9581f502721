"""The channel registry: grade channels, their house profile and outputs (channels.toml)."""

from channels.ads import (
    DEFAULT_AD_POLICY,
    LEGAL_AD_MINUTES_PER_HOUR,
    MINORS_BANNED,
    AdCategory,
    AdPolicy,
    clock_hour,
    split_by_clock_hour,
)
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
    "DEFAULT_AD_POLICY",
    "LEGAL_AD_MINUTES_PER_HOUR",
    "MINORS_BANNED",
    "PROFILES",
    "SAMPLE_CHANNELS_FILE",
    "AdCategory",
    "AdPolicy",
    "Channel",
    "ChannelRegistry",
    "ChannelRegistryError",
    "ChannelsError",
    "HouseProfile",
    "Network",
    "Output",
    "OutputKind",
    "clock_hour",
    "load_registry",
    "parse_output_url",
    "profile_by_name",
    "split_by_clock_hour",
]
