"""Course covers: a pattern generated from the course's title, until a course has its own image.

The same title always gives the same cover (a SHA-256 of the title picks the colours and the
pattern), drawn as a small inline SVG with presentation attributes only (no inline styles, which
the CSP forbids, and no request). It is decoration: hidden from assistive technology, the card's
title says what it is. The dark theme dims it in CSS (``--cover-dim``).
"""

from __future__ import annotations

import colorsys
import hashlib

from markupsafe import Markup

WIDTH, HEIGHT = 320, 120
# Pairs of hues (degrees) that sit well together: the ground and the pattern.
_HUES = ((210, 190), (160, 130), (20, 40), (265, 300), (340, 20), (195, 230), (45, 15), (130, 90))


def _hex(hue: float, saturation: float, lightness: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _stripes(d: bytes, ink: str) -> list[str]:
    step = 28 + d[3] % 24
    band = step // 2
    return [
        f'<path d="M{x} {HEIGHT}L{x + HEIGHT} 0h{band}L{x + band} {HEIGHT}z" fill="{ink}"/>'
        for x in range(-HEIGHT, WIDTH, step)
    ]


def _dots(d: bytes, ink: str) -> list[str]:
    gap = 32 + d[3] % 12
    out = []
    for row, y in enumerate(range(gap // 2, HEIGHT + gap, gap)):
        for col, x in enumerate(range(gap // 2, WIDTH + gap, gap)):
            r = 2 + d[(row * 7 + col) % 32] % (gap // 3)
            out.append(f'<circle cx="{x}" cy="{y}" r="{r}" fill="{ink}"/>')
    return out


def _rings(d: bytes, ink: str) -> list[str]:
    cx, cy, width = 40 + d[3] % 240, 20 + d[4] % 80, 6 + d[5] % 8
    return [
        f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{ink}" stroke-width="{width}"/>'
        for r in range(18, 380, 30 + d[6] % 14)
    ]


def _quilt(d: bytes, ink: str) -> list[str]:
    size = 40
    out = []
    cells = [(x, y) for y in range(0, HEIGHT, size) for x in range(0, WIDTH, size)]
    for i, (x, y) in enumerate(cells):
        bits = d[i % 32] >> (i % 5)
        if bits & 1:
            out.append(f'<path d="M{x} {y}h{size}L{x} {y + size}z" fill="{ink}"/>')
        elif bits & 2:
            out.append(f'<rect x="{x + 8}" y="{y + 8}" width="24" height="24" fill="{ink}"/>')
    return out


_PATTERNS = (_stripes, _dots, _rings, _quilt)


def cover(title: str) -> Markup:
    """The inline SVG cover of a course called ``title``."""
    d = hashlib.sha256((title or "").strip().lower().encode()).digest()
    ground_hue, ink_hue = _HUES[d[0] % len(_HUES)]
    ground = _hex(ground_hue, 0.42, 0.36 + (d[1] % 8) / 100)
    ink = _hex(ink_hue, 0.55, 0.6 + (d[2] % 10) / 100)
    shapes = _PATTERNS[d[7] % len(_PATTERNS)](d, ink)
    # Only numbers and colours computed above go into the markup: nothing of the title itself.
    svg = (
        f'<svg class="cover-art" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'preserveAspectRatio="xMidYMid slice" aria-hidden="true" focusable="false">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="{ground}"/>'
        f'<g opacity=".55">{"".join(shapes)}</g></svg>'
    )
    return Markup(svg)  # noqa: S704 - built from digits and hex colours only
