"""Where the app may send a browser next: same-site paths only (no open redirects)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[\x00-\x20\\]")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a same-site relative path, else None (no open redirects)."""
    if not target or _UNSAFE.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
