"""Every exception channels raises, in one tree.

SkyclassError
└── ChannelsError
    └── ChannelRegistryError        (BadInputError: exit 2) channels.toml is wrong, or an unknown
                                    channel id; the message names the file, channel and field
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class ChannelsError(SkyclassError):
    """The channel registry could not answer."""


class ChannelRegistryError(ChannelsError, BadInputError):
    """channels.toml is wrong, or a channel id is unknown."""
