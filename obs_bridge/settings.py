"""What OBS needs to play facestyle's stream; plain Python, so OBS's own interpreter can load it.

Both the obs-websocket client (:mod:`obs_bridge.client`) and the script loaded in OBS's
Scripts dialog (``obs_bridge/obs_facestyle.py``) use these, so they configure OBS alike.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_INPUT",
    "DEFAULT_PORT",
    "MEDIA_SOURCE_KIND",
    "media_source_settings",
    "stream_url",
]

DEFAULT_INPUT = "facestyle"
DEFAULT_PORT = 9999
MEDIA_SOURCE_KIND = "ffmpeg_source"  # OBS's "Media Source"


def stream_url(port: int = DEFAULT_PORT) -> str:
    """The loopback UDP URL ``facestyle live --stream`` sends to and OBS reads from."""
    return f"udp://127.0.0.1:{port}"


def media_source_settings(url: str) -> dict:
    """OBS Media Source settings that play ``url`` with as little buffering as OBS allows."""
    return {
        "is_local_file": False,
        "input": url,
        "input_format": "mpegts",
        "buffering_mb": 0,  # OBS's default 2 MB buffer is seconds of delay at these rates
        "reconnect_delay_sec": 1,
        "restart_on_activate": True,
        "close_when_inactive": False,
        "clear_on_media_end": False,
        "hw_decode": False,
    }
