"""Turn any raw image a user gives into the exact float array a model was trained on.

This module is the single preprocessing path: training data, the CLI and the app all go through
:func:`prepare_image` (= :func:`load_image` + :func:`to_array`), so a picture gives the same array
wherever it comes from.

Choices, and why:

* **Inputs.** A file path, bytes, a binary file object (e.g. a Streamlit upload), a PIL image or a
  numpy array. Files may be PNG, JPEG (incl. MPO), WebP, GIF, BMP, TIFF, PPM/PGM, TGA, ICO, QOI and,
  where Pillow was built with them, AVIF and JPEG 2000. Other formats Pillow knows are refused on
  purpose: some (EPS) run external programs when decoded.
* **Safety first.** The pixel count is checked from the header, before any pixel is decoded
  (``Image.open`` is lazy), against :data:`MAX_PIXELS`; Pillow's own decompression-bomb error and
  warning are caught and reported the same way. Then the whole image is decoded with ``load()``
  (truncated files are errors: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set).
* **Orientation and frames.** The EXIF orientation tag is applied (``ImageOps.exif_transpose``),
  so a phone photo is seen upright; of an animated GIF/WebP (or a multi-page TIFF) only the first
  frame is used.
* **Alpha is composited onto BLACK** (colour x alpha): the studio's images are bright objects on a
  dark background, so a transparent area reads as 0, i.e. background. This covers RGBA, LA, PA,
  palette images with transparency and PNG ``tRNS`` colour keys.
* **Bit depth.** 8-bit data is divided by 255. 16-bit greyscale (``I;16``, e.g. 16-bit PNG/TIFF) is
  divided by 65535, not clipped to 255 as ``convert("L")`` would do; a TIFF's real ``BitsPerSample``
  (e.g. 12) is used when it declares one. A 32-bit ``I`` image without such a tag is read as 16-bit
  when all values fit in 0..65535 (Pillow decodes 16-bit PGM that way), else as 31-bit. ``F`` images
  and float arrays must already be in [0, 1]. Pillow has no 16-bit or float *colour* mode (it
  decodes 48-bit PNGs to 8 bits per channel itself), so uint16/float colour arrays are rounded to
  8 bits per channel; greyscale keeps its full precision.
* **Everything after decoding is float32**: compositing, greyscale conversion and resizing, so no
  precision is lost to intermediate 8-bit rounding. Greyscale is ITU-R 601 luma,
  0.299 R + 0.587 G + 0.114 B, the weights of Pillow's ``convert("L")``.
* **Resampling.** Shrinking (the usual case: photos -> 32x32) uses ``Image.Resampling.BOX``: an
  exact area average (each output pixel is the mean of the input area it covers), so it is
  anti-aliased, never overshoots (no ringing, unlike LANCZOS) and keeps the mean brightness.
  If either side has to grow, BILINEAR is used instead (BOX would then be nearest-neighbour).
  The choice depends only on the source and target sizes, so it is deterministic.
* **Errors.** Every failure raises :class:`~mtl_core.errors.UserError` with one line,
  ``"<name>: <problem>"``, where ``<name>`` is :func:`describe_source`.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mtl_core.errors import UserError

MAX_PIXELS = 40_000_000  # refuse larger images before decoding (decompression bombs)

# Raster formats we decode; Pillow's other plugins (EPS runs Ghostscript, WMF, FITS, ...) are refused.
SAFE_FORMATS = (
    "PNG",
    "JPEG",
    "WEBP",
    "GIF",
    "BMP",
    "DIB",
    "TIFF",
    "PPM",
    "TGA",
    "ICO",
    "QOI",
    "AVIF",
    "JPEG2000",
)

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's convert("L")
FLOAT_TOLERANCE = 0.01  # float pixels may stray this far outside [0, 1] (rounding) and are clipped
ORIENTATION_TAG = 0x0112

_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_TO_RGB_MODES = ("RGBX", "CMYK", "YCbCr", "HSV")


# ----------------------------------------------------------------------------- public API


def describe_source(source: Any, name: str | None = None) -> str:
    """The label used in error messages and prediction JSON.

    ``name`` if given; else the file name for a path (or for a file object / PIL image that knows
    its file, e.g. a Streamlit upload); else ``"<bytes>"``, ``"<array>"``, ``"<PIL image>"``,
    ``"<file>"`` or ``"<TYPE>"``.
    """
    if name:
        label = str(name)
    elif isinstance(source, (str, os.PathLike)):
        label = Path(source).name or str(os.fspath(source)) or "<empty path>"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label = "<bytes>"
    elif isinstance(source, np.ndarray):
        label = "<array>"
    elif isinstance(source, Image.Image):
        filename = getattr(source, "filename", "")
        label = Path(filename).name if isinstance(filename, str) and filename else "<PIL image>"
    elif hasattr(source, "read"):
        filename = getattr(source, "name", None)
        label = Path(filename).name if isinstance(filename, str) and filename else "<file>"
    else:
        label = f"<{type(source).__name__}>"
    return " ".join(label.split()) or "<unnamed>"  # one line, always


def load_image(source: Any, *, name: str | None = None) -> Image.Image:
    """Open, fully decode and orient an image: a PIL image whose pixels are in memory (no open file).

    ``source``: a file path (str / ``pathlib.Path``), bytes / bytearray, a binary file object,
    a PIL image (returned as a copy; the original is only rewound to its first frame and loaded)
    or a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8, uint16, bool or float in
    [0, 1].
    The mode is left as decoded (alpha is composited later, by :func:`to_array`), except that a
    TIFF declaring an unusual bit depth is returned as an ``F`` image already scaled to [0, 1].
    """
    label = describe_source(source, name)
    if isinstance(source, Image.Image):
        return _normalize(source, label, copy=True)
    if isinstance(source, np.ndarray):
        return _from_array(source, label)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source), label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), label)
    if hasattr(source, "read"):
        return _from_bytes(_read_file_object(source, label), label)
    raise UserError(
        f"{label}: unsupported input type {type(source).__name__} "
        "(expected a file path, bytes, a binary file, a PIL image or a numpy array)"
    )


def to_array(img: Image.Image, size: tuple[int, int], channels: int) -> np.ndarray:
    """Float32 array (height, width, channels) in [0, 1] from a PIL image.

    ``size`` is (height, width). ``channels`` is 1 (greyscale, ITU-R 601 luma) or 3 (RGB).
    Alpha is composited onto black; see the module docstring for resampling and bit depth.
    """
    return _to_array(img, size, channels, describe_source(img))


def prepare_image(
    source: Any, size: tuple[int, int] = (32, 32), channels: int = 1, *, name: str | None = None
) -> np.ndarray:
    """:func:`load_image` then :func:`to_array`: the model-ready float32 (H, W, channels) array."""
    label = describe_source(source, name)
    return _to_array(load_image(source, name=label), size, channels, label)


# ----------------------------------------------------------------------------- loading


def _fail(label: str, problem: str) -> UserError:
    return UserError(f"{label}: {problem}")


def _mpx(n: float) -> str:
    return f"{n / 1_000_000:g} Mpx"


def _too_large(label: str, size: tuple[int, int] | None, pixels: int | None = None) -> UserError:
    limit = f"limit {_mpx(MAX_PIXELS)}"
    if size is not None:
        return _fail(label, f"image too large ({size[0]}×{size[1]} px, {limit})")
    what = f"{pixels} px" if pixels else "over the pixel limit"
    return _fail(label, f"image too large ({what}, {limit})")


def _check_pixels(size: tuple[int, int], label: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _fail(label, f"empty image ({width}×{height} px)")
    if width * height > MAX_PIXELS:
        raise _too_large(label, (width, height))


def _clean(exc: BaseException) -> str:
    """A short, single-line description of a decoder exception (no paths, no object reprs)."""
    text = " ".join(str(exc).split())
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "", text)
    text = re.sub(r"\(\d+ bytes not processed\)", "", text).strip(" .:")
    if not text:
        text = type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def _decode_error(label: str, fmt: str | None, exc: BaseException) -> UserError:
    fmt = fmt or "image"
    if isinstance(exc, MemoryError):
        return _fail(label, "not enough memory to decode the image")
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return _fail(label, f"image too large ({_clean(exc)})")
    text = _clean(exc)
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return _fail(label, f"not a readable image (truncated {fmt}: image file is truncated)")
    return _fail(label, f"not a readable image (corrupt {fmt} data: {text})")


def _safe_formats() -> list[str]:
    Image.init()
    return [fmt for fmt in SAFE_FORMATS if fmt in Image.OPEN]


def _read_file_object(source: Any, label: str) -> bytes:
    try:
        if getattr(source, "seekable", lambda: False)():
            source.seek(0)
        data = source.read()
    except Exception as exc:  # noqa: BLE001 - any read failure is the user's file's problem
        raise _fail(label, f"cannot read file ({_clean(exc)})") from None
    if isinstance(data, str):
        raise _fail(label, "file was opened in text mode (open it with 'rb')")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail(label, f"file object returned {type(data).__name__}, expected bytes")
    return bytes(data)


def _from_path(path: Path, label: str) -> Image.Image:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise _fail(label, "no such file") from None
    except PermissionError:
        raise _fail(label, "permission denied") from None
    except (OSError, ValueError) as exc:
        raise _fail(label, f"cannot read file ({_clean(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise _fail(label, "is a directory, not an image file")
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise _fail(label, "empty file (0 bytes)")
    try:
        fp = path.open("rb")  # noqa: SIM115 - closed by the with below
    except PermissionError:
        raise _fail(label, "permission denied") from None
    except OSError as exc:
        raise _fail(label, f"cannot read file ({_clean(exc)})") from None
    with fp:
        return _from_stream(fp, label)


def _from_bytes(data: bytes, label: str) -> Image.Image:
    if not data:
        raise _fail(label, "empty file (0 bytes)")
    return _from_stream(io.BytesIO(data), label)


def _from_stream(fp: Any, label: str) -> Image.Image:
    """Identify (header only), check the size, then decode; ``fp`` is a seekable binary file."""
    formats = _safe_formats()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(label, _probe_size(fp, formats), int(match.group(1)) if match else None) from None
    except UnidentifiedImageError:
        other = _identify_any(fp)
        if other:
            raise _fail(label, f"unsupported image format ({other})") from None
        raise _fail(label, "not a readable image (cannot identify image file)") from None
    except MemoryError:
        raise _fail(label, "not enough memory to read the image") from None
    except Exception as exc:  # noqa: BLE001 - a broken header is a user error, whatever the plugin raises
        raise _decode_error(label, None, exc) from None
    with img:  # ImageFile.__exit__ only lets go of the file: the decoded pixels stay usable
        return _normalize(img, label, copy=False)


def header_pixels(data: bytes) -> int:
    """Width x height read from an image file's header only, without decoding (0 when it is not an image this
    module reads: decoding it then says why). For quotas on the pixels of a request."""
    size = _probe_size(io.BytesIO(data), _safe_formats())
    return size[0] * size[1] if size else 0


def _probe_size(fp: Any, formats: list[str]) -> tuple[int, int] | None:
    """Width and height from the header without Pillow's bomb check (only to word the error)."""
    try:
        fp.seek(0)
        prefix = fp.read(16)
        for fmt in formats:
            factory, accept = Image.OPEN[fmt]
            accepted = accept(prefix) if accept else True
            if not accepted or isinstance(accepted, str):
                continue
            fp.seek(0)
            try:
                width, height = factory(fp, "").size
                return int(width), int(height)
            except Exception:  # noqa: BLE001, S112 - try the next plugin, as Image.open does
                continue
    except Exception:  # noqa: BLE001 - best effort: the caller falls back to the pixel count
        return None
    return None


def _identify_any(fp: Any) -> str | None:
    """The format name if Pillow recognises the header at all (used to word 'unsupported format')."""
    try:
        fp.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(fp).format
    except Exception:  # noqa: BLE001 - unknown stays unknown
        return None


def _declared_bits(img: Image.Image) -> tuple[int, bool] | None:
    """(bits per sample, signed) declared by a TIFF, if any."""
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return None
    try:
        bits = tags.get(258)
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        fmt = tags.get(339, 1)
        signed = int(fmt[0] if isinstance(fmt, tuple) else fmt) == 2
    except Exception:  # noqa: BLE001 - an odd tag means "unknown"
        return None
    return (bits, signed) if 1 <= bits <= 32 else None


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: use the pixels as stored
        return 1


def _normalize(img: Image.Image, label: str, *, copy: bool) -> Image.Image:
    """Size check, first frame, full decode, EXIF orientation, declared TIFF bit depth."""
    _check_pixels(img.size, label)
    fmt = getattr(img, "format", None)
    try:
        if img.tell() != 0:
            img.seek(0)
        img.load()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is reported as a broken file
        raise _decode_error(label, fmt, exc) from None
    bits = _declared_bits(img) if img.mode in _INT_MODES else None

    out = img
    if _orientation(img) in range(2, 9):
        try:
            out = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - unreadable EXIF: use the pixels as stored
            out = img
    if out is img and copy:
        out = img.copy()

    if bits is not None:
        nbits, signed = bits
        scale = float(2 ** (nbits - 1) - 1 if signed else 2**nbits - 1)
        values = np.clip(np.asarray(out).astype(np.float32), 0, None) / np.float32(scale)
        out = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    return out


def _from_array(arr: np.ndarray, label: str) -> Image.Image:
    shape = tuple(arr.shape)
    if arr.ndim == 3 and shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise _fail(
            label,
            f"expected an image array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {shape}",
        )
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise _fail(label, f"empty array (shape {shape})")
    _check_pixels((width, height), label)

    kind, itemsize = arr.dtype.kind, arr.dtype.itemsize
    if kind == "b":
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif kind == "u" and itemsize == 1:
        pass
    elif kind == "u" and itemsize == 2:
        if arr.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint16))  # mode I;16
        arr = np.round(arr / 257.0).astype(np.uint8)  # Pillow has no 16-bit colour mode
    elif kind == "f":
        values = _check_floats(arr, label)
        if arr.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # mode F
        arr = np.round(values * 255.0).astype(np.uint8)  # Pillow has no float colour mode
    else:
        raise _fail(
            label, f"unsupported array dtype {arr.dtype} (use uint8, uint16, bool or float in [0, 1])"
        )
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))


def _check_floats(values: np.ndarray, label: str) -> np.ndarray:
    """Finite and in [0, 1] (up to FLOAT_TOLERANCE); returns the values clipped to [0, 1]."""
    if not np.isfinite(values).all():
        raise _fail(label, "contains NaN or infinite pixel values")
    low, high = float(values.min()), float(values.max())
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        raise _fail(
            label, f"float pixel values must be in [0, 1], got {low:g} to {high:g} (scale them first)"
        )
    return np.clip(values, 0.0, 1.0)


# ----------------------------------------------------------------------------- to float array


def _check_target(size: Any, channels: Any, label: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
        ok = height > 0 and width > 0 and (height, width) == tuple(size)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise _fail(label, f"invalid target size {size!r} (expected (height, width), positive integers)")
    if channels not in (1, 3):
        raise _fail(label, f"invalid target channels {channels!r} (expected 1 or 3)")
    return height, width


def _int_scale(values: np.ndarray, mode: str) -> float:
    if mode != "I":
        return 65535.0
    return 65535.0 if values.size == 0 or int(values.max()) <= 65535 else float(2**31 - 1)


def _planes(img: Image.Image, label: str) -> tuple[list[np.ndarray], float, np.ndarray | None]:
    """Colour planes (1 or 3, raw dtype), the divisor that maps them to [0, 1], and alpha in [0, 1]."""
    mode = img.mode
    if mode in _INT_MODES or mode == "F":
        values = np.asarray(img)
        alpha = None
        key = img.info.get("transparency")
        if isinstance(key, (int, float)) and not isinstance(key, bool):
            alpha = (values != key).astype(np.float32)  # e.g. a 16-bit PNG tRNS colour key
        if mode == "F":
            return [_check_floats(values.astype(np.float32), label)], 1.0, alpha
        return [np.clip(values, 0, None)], _int_scale(values, mode), alpha

    if mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    elif mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert("LA" if mode == "L" else "RGBA")
    elif mode in _TO_RGB_MODES:
        img = img.convert("RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise _fail(label, f"unsupported colour mode {mode}")

    values = np.asarray(img)
    if values.ndim == 2:
        values = values[..., None]
    n = values.shape[2]
    alpha = values[..., n - 1].astype(np.float32) / np.float32(255) if n in (2, 4) else None
    colour = n - 1 if n in (2, 4) else n
    return [values[..., i] for i in range(colour)], 255.0, alpha


def _crop_to_aspect(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre of ``plane`` with the target's aspect ratio: a photo is cropped, not squashed (a 4:3 photo of a
    square would otherwise reach the model as a rectangle). Less than a pixel off is left alone."""
    src_h, src_w = plane.shape
    if abs(src_w * height - src_h * width) < max(height, width):
        return plane
    if src_w * height > src_h * width:  # wider than the target: keep the middle columns
        keep = max(1, round(src_h * width / height))
        left = (src_w - keep) // 2
        return plane[:, left:left + keep]
    keep = max(1, round(src_w * height / width))
    top = (src_h - keep) // 2
    return plane[top:top + keep, :]


def _resize(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    src_h, src_w = plane.shape
    if (src_h, src_w) == (height, width):
        return plane
    shrink = height <= src_h and width <= src_w
    resample = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode F
    return np.asarray(image.resize((width, height), resample=resample), dtype=np.float32)


def _to_array(img: Image.Image, size: Any, channels: Any, label: str) -> np.ndarray:
    if not isinstance(img, Image.Image):
        raise _fail(label, f"expected a PIL image, got {type(img).__name__}")
    height, width = _check_target(size, channels, label)
    img = _normalize(img, label, copy=False)
    planes, scale, alpha = _planes(img, label)
    divisor = np.float32(scale)

    def unit(plane: np.ndarray, weight: float = 1.0) -> np.ndarray:
        out = plane.astype(np.float32)  # in-place from here on: these arrays can be 40 Mpx
        out /= divisor
        if weight != 1.0:
            out *= np.float32(weight)
        return out

    if channels == 1 and len(planes) == 3:
        floats = [unit(planes[0], LUMA_WEIGHTS[0])]
        for weight, plane in zip(LUMA_WEIGHTS[1:], planes[1:], strict=True):
            floats[0] += unit(plane, weight)
    elif channels == 1 or len(planes) == 1:
        floats = [unit(planes[0])]
    else:
        floats = [unit(plane) for plane in planes]
    if alpha is not None:
        for plane in floats:
            plane *= alpha

    resized = [_resize(_crop_to_aspect(plane, height, width), height, width) for plane in floats]
    if channels == 3 and len(resized) == 1:
        resized *= 3
    out = np.stack(resized, axis=-1).astype(np.float32, copy=False)
    np.clip(out, 0.0, 1.0, out=out)
    return out


# ----------------------------------------------------------------------------- colour lost in grey

GREY_CONTRAST_KEPT = 0.2  # below this share of its contrast left in grey, a colour picture gets a warning
COLOUR_CONTRAST_SEEN = 0.05  # ... if it has visible contrast at all (std of its pixels, in [0, 1] units)


def contrast_lost_in_grey(img: Image.Image, size: tuple[int, int], name: str | None = None) -> str | None:
    """A warning when a grey model would barely see a colour picture: its parts differ in colour but hardly in
    brightness (a red shape on a green of the same luminance), so in the luma the model reads, most of its
    contrast is gone. None for a picture that keeps its contrast, or that has none to lose.

    Contrast is the standard deviation of the pixels at the model's size: of the RGB vectors (per channel) and
    of their luma. A grey picture keeps all of it; a blue shape on black keeps 20% (blue weighs 0.114)."""
    rgb = _to_array(img, size, 3, describe_source(img, name))
    colour = float(np.sqrt(((rgb - rgb.mean(axis=(0, 1))) ** 2).sum(axis=-1).mean() / 3))
    if colour < COLOUR_CONTRAST_SEEN:
        return None
    luma = rgb @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    kept = float(luma.std()) / colour
    if kept >= GREY_CONTRAST_KEPT:
        return None
    return (f"this model sees images in grey, and this picture keeps only {kept:.0%} of its contrast there: its "
            "colours differ more than their brightness, so what the model sees may be nearly blank; a version with "
            "light and dark parts will be read better")
