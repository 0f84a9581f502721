"""Per-channel playout: timeline, muxer, in-band SI and cues, pacing, outputs.

The engine (``PlayoutEngine.chunks``) turns a rundown and its house-format
assets into one continuous CBR MPEG-TS, remuxed in-process with PyAV, as a
stream of ``TsChunk``; outputs are ``TsSink``s.
"""

from playout.stream import TsChunk, TsSink

__all__ = ["TsChunk", "TsSink"]
