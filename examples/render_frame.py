#!/usr/bin/env python3
"""Render one frame of a small animation to a PNG, in pure Python (no dependencies).

The Thresher demo uses it when POV-Ray is not installed, so every machine can render a real image
sequence: a shaded sphere bouncing across a checkered floor, with a shadow, written as an 8-bit RGB
PNG with zlib and struct.

    python render_frame.py --frame 7 --frames 24 --output out/frame_0007.png [--width 320 --height 240]
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import time
import zlib
from pathlib import Path

Vec = tuple[float, float, float]


def write_png(path: Path, width: int, height: int, rows: list[bytes]) -> None:
    """Write RGB rows as a PNG (filter type 0 per row), atomically: a half file is never left."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6))
           + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(png)
    tmp.replace(path)


def _norm(v: Vec) -> Vec:
    length = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) or 1.0
    return (v[0] / length, v[1] / length, v[2] / length)


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _hit_sphere(origin: Vec, direction: Vec, center: Vec, radius: float) -> float | None:
    oc = (origin[0] - center[0], origin[1] - center[1], origin[2] - center[2])
    b = _dot(oc, direction)
    c = _dot(oc, oc) - radius * radius
    disc = b * b - c
    if disc < 0:
        return None
    t = -b - math.sqrt(disc)
    return t if t > 1e-4 else None


def render(frame: int, frames: int, width: int, height: int) -> list[bytes]:
    """One frame: the sphere's position is a function of frame/frames, so the sequence loops."""
    phase = ((frame - 1) % max(1, frames)) / max(1, frames)
    angle = 2 * math.pi * phase
    radius = 0.6
    center = (1.6 * math.cos(angle), radius + 1.2 * abs(math.sin(2 * angle)), 4.0 + 1.2 * math.sin(angle))
    light = _norm((-0.6, 1.0, -0.5))
    eye: Vec = (0.0, 1.2, -1.5)
    hue = (0.9, 0.35 + 0.3 * math.sin(angle), 0.2 + 0.2 * math.cos(angle))
    aspect = width / height
    rows: list[bytes] = []
    for y in range(height):
        row = bytearray()
        sy = (1 - 2 * (y + 0.5) / height) * 0.6
        for x in range(width):
            sx = (2 * (x + 0.5) / width - 1) * 0.6 * aspect
            d = _norm((sx, sy - 0.15, 1.0))
            color = _shade(eye, d, center, radius, light, hue)
            row += bytes(max(0, min(255, int(c * 255))) for c in color)
        rows.append(bytes(row))
    return rows


def _shade(eye: Vec, d: Vec, center: Vec, radius: float, light: Vec, hue: Vec) -> Vec:
    t = _hit_sphere(eye, d, center, radius)
    if t is not None:
        p = (eye[0] + d[0] * t, eye[1] + d[1] * t, eye[2] + d[2] * t)
        n = _norm((p[0] - center[0], p[1] - center[1], p[2] - center[2]))
        diffuse = max(0.0, _dot(n, light))
        half = _norm((light[0] - d[0], light[1] - d[1], light[2] - d[2]))
        spec = max(0.0, _dot(n, half)) ** 40
        return tuple(0.08 + c * 0.85 * diffuse + 0.6 * spec for c in hue)  # type: ignore[return-value]
    if d[1] < 0:  # the floor, y = 0
        t = -eye[1] / d[1]
        p = (eye[0] + d[0] * t, 0.0, eye[2] + d[2] * t)
        check = (math.floor(p[0] * 1.5) + math.floor(p[2] * 1.5)) % 2
        base = 0.75 if check else 0.35
        shadowed = _hit_sphere(p, light, center, radius) is not None
        fade = math.exp(-0.04 * t)
        k = base * (0.35 if shadowed else 1.0) * fade
        return (k, k, k * 1.05)
    sky = 0.5 + 0.5 * d[1]
    return (0.35 + 0.3 * sky, 0.55 + 0.3 * sky, 0.9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=int, required=True)
    parser.add_argument("--frames", type=int, default=24, help="length of the loop, in frames")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"rendering frame {args.frame} of {args.frames} at {args.width}x{args.height}", flush=True)
    rows = render(args.frame, args.frames, args.width, args.height)
    write_png(args.output, args.width, args.height, rows)
    print(f"wrote {args.output} in {time.monotonic() - started:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
