"""Template filters used across the app: ``duration`` (a lifetime from the settings in words)
and ``device`` (a short name for a User-Agent string)."""

from __future__ import annotations

_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def duration(seconds: int) -> str:
    """A lifetime from the settings in words: "2 hours", "30 days", "90 minutes"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def device(user_agent: str | None) -> str:
    """A short human name for a User-Agent string: "Firefox on Windows"."""
    ua = user_agent or ""
    browser = next((name for key, name in _BROWSERS if key in ua), None)
    system = next((name for key, name in _SYSTEMS if key in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or (ua[:40] if ua else "Unknown device")


def register(app) -> None:
    from .covers import cover
    from .embeds import video_embed
    from .services.estimates import length_label

    app.add_template_filter(duration)
    app.add_template_filter(device)
    app.add_template_filter(cover)
    app.add_template_filter(length_label)
    app.add_template_filter(video_embed)
