"""Draw the default Apple Wallet pass images (icon and logo at 1x/2x/3x) into
src/stampbook/wallet/images/. Run once; the PNGs are committed:

    .venv/bin/python scripts/make_wallet_images.py

Pure Python (zlib), so it needs no imaging library: a stamp (a ring and a
dot) on the pass's brown, drawn with 4x4 supersampling for smooth edges.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "stampbook" / "wallet" / "images"
BROWN = (120, 53, 15)
CREAM = (254, 243, 199)
SAMPLES = 4


def png(width: int, height: int, pixel: object) -> bytes:
    """An RGBA PNG whose pixel (x, y) is ``pixel(x, y)``: an (r, g, b, a) tuple."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))  # type: ignore[operator]

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def stamp_shape(cx: float, cy: float, r: float):  # type: ignore[no-untyped-def]
    """Coverage (0..1) of a ring of radius r with a dot inside, at (cx, cy)."""

    def inside(px: float, py: float) -> bool:
        d = ((px - cx) ** 2 + (py - cy) ** 2) ** 0.5
        return r * 0.78 <= d <= r or d <= r * 0.45

    def coverage(x: int, y: int) -> float:
        hits = sum(
            inside(x + (i + 0.5) / SAMPLES, y + (j + 0.5) / SAMPLES)
            for i in range(SAMPLES)
            for j in range(SAMPLES)
        )
        return hits / SAMPLES**2

    return coverage


def icon(size: int) -> bytes:
    """The icon: a cream stamp on brown, filling the square."""
    cover = stamp_shape(size / 2, size / 2, size * 0.38)

    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        c = cover(x, y)
        r, g, b = (round(BROWN[k] * (1 - c) + CREAM[k] * c) for k in range(3))
        return (r, g, b, 255)

    return png(size, size, pixel)


def logo(scale: int) -> bytes:
    """The logo: a cream stamp on a transparent strip (the shop's name follows it)."""
    width, height = 50 * scale, 50 * scale
    cover = stamp_shape(width / 2, height / 2, height * 0.42)

    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        return (*CREAM, round(255 * cover(x, y)))

    return png(width, height, pixel)


def main() -> None:
    """Write icon.png, icon@2x.png, icon@3x.png, logo.png, logo@2x.png, logo@3x.png."""
    OUT.mkdir(parents=True, exist_ok=True)
    for scale in (1, 2, 3):
        suffix = "" if scale == 1 else f"@{scale}x"
        (OUT / f"icon{suffix}.png").write_bytes(icon(29 * scale))
        (OUT / f"logo{suffix}.png").write_bytes(logo(scale))


if __name__ == "__main__":
    main()
