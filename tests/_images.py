"""Image files for inference, CLI and app tests: real formats written with Pillow.

Images come from the shapes generator (the data the tiny model was trained on) and are saved as
8-bit files, the way a user would hand them to the studio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mtl_core.control.data.shapes import generate_shapes


def shapes(n: int = 4, seed: int = 123, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32, 32) float32 images in [0, 1] and their (n, 3) labels."""
    return generate_shapes(n=n, seed=seed, noise=noise)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def grey_image(x: np.ndarray) -> Image.Image:
    """A float (H, W) array in [0, 1] as an 8-bit greyscale PIL image."""
    return Image.fromarray(to_uint8(x))


def save_png(x: np.ndarray, path: Path) -> Path:
    """A float (H, W) array in [0, 1] as an 8-bit greyscale PNG."""
    grey_image(x).save(path, format="PNG")
    return path


def png_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def rgb_jpeg(x: np.ndarray, path: Path, size: int = 256) -> Path:
    """A larger colour JPEG of the same picture: tinted, upscaled, lossy (like a user's photo)."""
    grey = grey_image(x).resize((size, size), Image.Resampling.BICUBIC)
    g = np.asarray(grey, dtype=np.float32)
    rgb = np.stack([g, g * 0.9, g * 0.7], axis=-1)
    Image.fromarray(np.round(rgb).astype(np.uint8)).save(path, format="JPEG", quality=92)
    return path


def rgba_png(x: np.ndarray, path: Path) -> Path:
    """An RGBA PNG: the picture in colour, with a transparent border."""
    g = to_uint8(x)
    alpha = np.full_like(g, 255)
    alpha[:2, :] = alpha[-2:, :] = alpha[:, :2] = alpha[:, -2:] = 0
    Image.fromarray(np.stack([g, g, g, alpha], axis=-1)).save(path, format="PNG")
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_file(path: Path) -> Path:
    """A text file with an image's extension."""
    path.write_text("this is not an image, only text saved with a .png name\n")
    return path


def truncated_png(path: Path) -> Path:
    """A real PNG cut off in the middle of its pixel data."""
    full = path.with_name(path.stem + "-full.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path
