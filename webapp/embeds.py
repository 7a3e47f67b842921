"""Video players for video blocks: YouTube (through youtube-nocookie.com) and Vimeo, from the URL
forms those sites give out, parsed strictly. Anything else is not embedded (the block page shows
it as a link card). The CSP's ``frame-src`` allows exactly the two player hosts below.

Accepted (``http`` or ``https``, no user, no port, the host exactly as listed):

- YouTube: ``youtube.com/watch?v=ID`` (``www.``, ``m.``, ``music.``), ``youtu.be/ID``,
  ``youtube.com/embed/ID``, ``/shorts/ID``, ``/live/ID``, ``youtube-nocookie.com/embed/ID``;
  ID is 11 characters of ``A-Za-z0-9_-``; a start time ``t=`` or ``start=`` (``90``, ``90s``,
  ``1m30s``, ``1h2m3s``) is kept, one it cannot read is dropped.
- Vimeo: ``vimeo.com/ID``, ``vimeo.com/ID/HASH`` (unlisted), ``vimeo.com/channels/NAME/ID``,
  ``vimeo.com/groups/NAME/videos/ID``, ``player.vimeo.com/video/ID`` (``?h=HASH``); ID is digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

YOUTUBE_PLAYER = "https://www.youtube-nocookie.com"
VIMEO_PLAYER = "https://player.vimeo.com"
FRAME_HOSTS = (YOUTUBE_PLAYER, VIMEO_PLAYER)

_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_NOCOOKIE_HOSTS = {"youtube-nocookie.com", "www.youtube-nocookie.com"}
_VIMEO_HOSTS = {"vimeo.com", "www.vimeo.com"}
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_VIMEO_ID = re.compile(r"[0-9]{1,12}")
_VIMEO_HASH = re.compile(r"[0-9a-f]{6,20}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TIME = re.compile(r"(?:(\d{1,2})h)?(?:(\d{1,3})m)?(?:(\d{1,5})s?)?")
MAX_URL = 2000


@dataclass(frozen=True)
class Embed:
    provider: str  # "YouTube" or "Vimeo"
    video_id: str
    src: str  # the player's URL, on one of FRAME_HOSTS


def _start(query: dict[str, list[str]]) -> int | None:
    for key in ("t", "start"):
        if key in query:
            match = _TIME.fullmatch(query[key][0])
            if not match or not any(match.groups()):
                return None
            h, m, s = (int(g or 0) for g in match.groups())
            return h * 3600 + m * 60 + s or None
    return None


def _youtube(video_id: str, query: dict[str, list[str]]) -> Embed | None:
    if not _YOUTUBE_ID.fullmatch(video_id):
        return None
    start = _start(query)
    params = "?" + urlencode({"start": start}) if start else ""
    return Embed("YouTube", video_id, f"{YOUTUBE_PLAYER}/embed/{video_id}{params}")


def _vimeo(video_id: str, secret: str | None) -> Embed | None:
    if not _VIMEO_ID.fullmatch(video_id) or (secret and not _VIMEO_HASH.fullmatch(secret)):
        return None
    params = {"h": secret} if secret else {}
    params["dnt"] = "1"  # Vimeo's "do not track": no cookies or analytics for the viewer
    return Embed("Vimeo", video_id, f"{VIMEO_PLAYER}/video/{video_id}?{urlencode(params)}")


def video_embed(url: str | None) -> Embed | None:
    """The player for a video URL of a known form, else None."""
    if not url or len(url) > MAX_URL or not url.isascii() or re.search(r"[\s\\]", url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or port is not None or "@" in parts.netloc:
        return None
    host = (parts.hostname or "").lower()
    if parts.netloc.lower() != host:  # a trailing dot, brackets, anything but the bare host
        return None
    query = parse_qs(parts.query)
    path = [p for p in parts.path.split("/")][1:]
    if path and path[-1] == "":
        path = path[:-1]  # one trailing slash
    if host in _YOUTUBE_HOSTS:
        if path == ["watch"] and len(query.get("v", [])) == 1:
            return _youtube(query["v"][0], query)
        if len(path) == 2 and path[0] in ("embed", "shorts", "live"):
            return _youtube(path[1], query)
        return None
    if host in _NOCOOKIE_HOSTS:
        return _youtube(path[1], query) if len(path) == 2 and path[0] == "embed" else None
    if host == "youtu.be":
        return _youtube(path[0], query) if len(path) == 1 else None
    if host in _VIMEO_HOSTS:
        if len(path) == 1:
            return _vimeo(path[0], None)
        if len(path) == 2 and _VIMEO_ID.fullmatch(path[0]):
            return _vimeo(path[0], path[1])
        if len(path) == 3 and path[0] == "channels" and _NAME.fullmatch(path[1]):
            return _vimeo(path[2], None)
        if len(path) == 4 and path[0] == "groups" and path[2] == "videos":
            return _vimeo(path[3], None) if _NAME.fullmatch(path[1]) else None
        return None
    if host == "player.vimeo.com":
        if len(path) == 2 and path[0] == "video":
            secret = query.get("h", [None])[0]
            return _vimeo(path[1], secret)
        return None
    return None
