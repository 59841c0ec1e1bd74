"""Zips of image folders written by Pillow: 28x28 circles, squares and triangles with noise."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
SIZE = 28


def shape_image(shape: str, rng: np.random.Generator, size: int = SIZE,
                mode: str = "L") -> Image.Image:
    """One `shape` of random size, position, tilt and brightness on a random dark background,
    with Gaussian pixel noise."""
    background = int(rng.integers(0, 70))
    canvas = Image.new("L", (size, size), background)
    draw = ImageDraw.Draw(canvas)
    centre = size / 2 + rng.uniform(-4, 4, size=2)
    radius = rng.uniform(6, 11)
    fill = int(rng.integers(150, 256))
    if shape == "circle":
        draw.ellipse([*(centre - radius), *(centre + radius)], fill=fill)
    else:
        corners = 4 if shape == "square" else 3
        # Upright (a flat bottom edge), turned by up to 15 degrees either way.
        angle = math.pi / 2 + math.pi / corners + rng.uniform(-1, 1) * math.radians(15)
        draw.polygon([(centre[0] + radius * math.cos(angle + 2 * math.pi * k / corners),
                       centre[1] + radius * math.sin(angle + 2 * math.pi * k / corners))
                      for k in range(corners)], fill=fill)
    pixels = np.asarray(canvas, dtype=np.float64) + rng.normal(0, 20, (size, size))
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    return noisy.convert(mode)


def encode(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    """A deflated zip holding `members` (name -> bytes) in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def shape_members(n_per_class: int, *, split: str = "train", seed: int = 0,
                  size: int = SIZE, mode: str = "L",
                  image_format: str = "PNG") -> dict[str, bytes]:
    """{split/<shape>/<i>.png: image bytes} for every shape, `n_per_class` images each."""
    rng = np.random.default_rng(seed)
    suffix = "png" if image_format == "PNG" else "jpg"
    return {f"{split}/{shape}/{i:03d}.{suffix}": encode(shape_image(shape, rng, size, mode),
                                                        image_format)
            for shape in SHAPES for i in range(n_per_class)}


def shapes_zip(n_train: int, n_test: int = 0, *, seed: int = 0, **options: object) -> bytes:
    """A zip of train/ (and, with n_test, test/) shape folders, n per class."""
    members = shape_members(n_train, seed=seed, **options)  # type: ignore[arg-type]
    if n_test:
        members |= shape_members(n_test, split="test", seed=seed + 1,
                                 **options)  # type: ignore[arg-type]
    return zip_of(members)
