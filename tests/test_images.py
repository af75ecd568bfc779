"""Tests for mtl_core.control.data.images: real files in real formats, written with Pillow into tmp_path."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from mtl_core.control.data import images
from mtl_core.control.data.images import MAX_PIXELS, describe_source, load_image, prepare_image, to_array
from mtl_core.errors import UserError

EPS = 1e-6
Q = 1.0 / 255  # one 8-bit step


# ----------------------------------------------------------------------------- helpers


def save(img: Image.Image, path: Path, **params) -> Path:
    img.save(path, **params)
    return path


def halves(mode: str, left, right, size=(40, 20)) -> Image.Image:
    """A (w, h) image whose left half is ``left`` and right half is ``right``."""
    img = Image.new(mode, size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return img


def stored_mode(path: Path) -> str:
    """The mode Pillow decodes ``path`` as (documents which branch a test exercises)."""
    with Image.open(path) as img:
        return img.mode


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def crafted_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` (8-bit grey) with a tiny IDAT: never allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def user_error(name: str, *fragments: str, call) -> str:
    """``call()`` raises a one-line UserError "<name>: ..." naming every fragment; returns the message."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{name}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in message and " at 0x" not in message, message
    assert len(message) < 200, message
    return message


def left_right(arr: np.ndarray) -> tuple[float, float]:
    w = arr.shape[1]
    return float(arr[:, : w // 2].mean()), float(arr[:, w // 2 :].mean())


# ----------------------------------------------------------------------------- output contract


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(32, 32), (20, 48), (64, 16)])
def test_output_shape_dtype_range(tmp_path, channels, size):
    rng = np.random.default_rng(0)
    path = save(Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)), tmp_path / "rgb.png")
    out = prepare_image(path, size=size, channels=channels)
    assert out.shape == (*size, channels)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.flags.writeable


def test_default_size_and_channels(tmp_path):
    path = save(Image.new("RGB", (100, 80), (255, 0, 0)), tmp_path / "red.png")
    out = prepare_image(str(path))
    assert out.shape == (32, 32, 1)
    assert out == pytest.approx(0.299, abs=EPS)


def test_grayscale_is_itu601_luma_like_pil(tmp_path):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (24, 36, 3), dtype=np.uint8))
    out = prepare_image(save(img, tmp_path / "rgb.png"), size=(24, 36), channels=1)[..., 0]
    pil = np.asarray(img.convert("L"), np.float32) / 255
    assert np.abs(out - pil).max() <= Q  # PIL rounds to 8 bits; we keep the float
    red, green, blue = (
        prepare_image(np.full((4, 4, 3), c, np.uint8) * 255, (4, 4), 1) for c in np.eye(3, dtype=np.uint8)
    )
    assert (red.mean(), green.mean(), blue.mean()) == pytest.approx((0.299, 0.587, 0.114), abs=EPS)


def test_rgb_channels_kept_and_grey_replicated(tmp_path):
    rgb = prepare_image(save(Image.new("RGB", (8, 8), (255, 128, 0)), tmp_path / "c.png"), (8, 8), 3)
    assert rgb[0, 0] == pytest.approx([1.0, 128 / 255, 0.0], abs=EPS)
    grey = prepare_image(save(Image.new("L", (8, 8), 51), tmp_path / "g.png"), (8, 8), 3)
    assert grey == pytest.approx(0.2, abs=EPS)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])


def test_downsizing_is_an_area_average(tmp_path):
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = prepare_image(save(Image.fromarray(checker), tmp_path / "checker.png"), (8, 8), 1)
    assert out == pytest.approx(0.5, abs=1e-5)  # BOX: no aliasing, no ringing
    rng = np.random.default_rng(2)
    noise = rng.integers(0, 256, (90, 120), dtype=np.uint8)
    small = prepare_image(noise, (30, 40), 1)
    assert float(small.mean()) == pytest.approx(noise.mean() / 255, abs=1e-4)  # mean brightness kept
    blocks = noise.reshape(30, 3, 40, 3).mean(axis=(1, 3)) / 255  # exact 3x3 box means
    assert np.abs(small[..., 0] - blocks).max() < 1e-5


def test_upsizing_and_mixed_resize(tmp_path):
    path = save(halves("L", 0, 255, size=(4, 4)), tmp_path / "tiny.png")
    up = prepare_image(path, (16, 16), 1)
    assert up.shape == (16, 16, 1) and 0.0 <= up.min() and up.max() <= 1.0
    assert up[:, 0].max() == pytest.approx(0.0, abs=EPS) and up[:, -1].min() == pytest.approx(1.0, abs=EPS)
    mixed = prepare_image(path, (2, 16), 1)  # one side shrinks, the other grows
    assert mixed.shape == (2, 16, 1)


def test_same_pixels_same_array_whatever_the_source(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = save(Image.fromarray(arr), tmp_path / "same.png")
    expected = prepare_image(path, (16, 16), 1)
    data = path.read_bytes()
    with Image.open(path) as opened:
        assert np.array_equal(prepare_image(opened, (16, 16), 1), expected)
    for other in (
        str(path),
        data,
        bytearray(data),
        memoryview(data),
        io.BytesIO(data),
        arr,
        Image.fromarray(arr),
    ):
        assert np.array_equal(prepare_image(other, (16, 16), 1), expected)
    with path.open("rb") as fh:
        assert np.array_equal(prepare_image(fh, (16, 16), 1), expected)


def test_load_image_returns_a_loaded_detached_copy(tmp_path):
    path = save(Image.new("RGB", (10, 6), (1, 2, 3)), tmp_path / "a.png")
    img = load_image(path)
    path.unlink()  # pixels already decoded, file not needed any more
    assert img.size == (10, 6) and img.getpixel((0, 0)) == (1, 2, 3)
    original = Image.new("RGBA", (5, 5), (9, 9, 9, 9))
    copy = load_image(original)
    assert copy is not original and copy.mode == "RGBA"
    copy.putpixel((0, 0), (0, 0, 0, 0))
    assert original.getpixel((0, 0)) == (9, 9, 9, 9)


def test_to_array_accepts_a_lazy_pil_image(tmp_path):
    path = save(halves("L", 0, 255), tmp_path / "lazy.png")
    with Image.open(path) as lazy:
        out = to_array(lazy, (20, 40), 1)
    assert left_right(out) == pytest.approx((0.0, 1.0), abs=EPS)


def test_truncated_images_flag_left_alone():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ----------------------------------------------------------------------------- modes


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_rgba_transparent_area_is_black(tmp_path, fmt):
    # Left half opaque white, right half fully transparent WHITE: compositing on black gives 0.
    img = halves("RGBA", (255, 255, 255, 255), (255, 255, 255, 0))
    path = save(img, tmp_path / f"rgba.{fmt}", **({"lossless": True} if fmt == "webp" else {}))
    assert stored_mode(path) == "RGBA"
    for channels in (1, 3):
        out = prepare_image(path, (20, 40), channels)
        assert left_right(out) == pytest.approx((1.0, 0.0), abs=EPS)


def test_rgba_partial_alpha_scales_colour(tmp_path):
    path = save(Image.new("RGBA", (6, 6), (255, 255, 255, 51)), tmp_path / "half.png")
    assert prepare_image(path, (6, 6), 3) == pytest.approx(0.2, abs=EPS)


def test_la_image(tmp_path):
    path = save(halves("LA", (200, 255), (255, 0)), tmp_path / "la.png")
    assert stored_mode(path) == "LA"
    out = prepare_image(path, (20, 40), 1)
    assert left_right(out) == pytest.approx((200 / 255, 0.0), abs=EPS)


def test_grey_l_image(tmp_path):
    path = save(halves("L", 10, 250), tmp_path / "l.png")
    assert left_right(prepare_image(path, (20, 40), 1)) == pytest.approx((10 / 255, 250 / 255), abs=EPS)


@pytest.mark.parametrize("fmt", ["png", "bmp"])
def test_bilevel_image(tmp_path, fmt):
    path = save(halves("1", 0, 1), tmp_path / f"bits.{fmt}")
    assert stored_mode(path) == "1"
    assert left_right(prepare_image(path, (20, 40), 1)) == pytest.approx((0.0, 1.0), abs=EPS)


def test_palette_image(tmp_path):
    img = halves("P", 0, 1)
    img.putpalette([255, 0, 0, 0, 0, 255])  # index 0 red, 1 blue
    path = save(img, tmp_path / "pal.png")
    assert stored_mode(path) == "P"
    out = prepare_image(path, (20, 40), 3)
    assert out[0, 0] == pytest.approx([1, 0, 0], abs=EPS) and out[0, -1] == pytest.approx([0, 0, 1], abs=EPS)
    grey = prepare_image(path, (20, 40), 1)
    assert left_right(grey) == pytest.approx((0.299, 0.114), abs=EPS)


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_with_transparency(tmp_path, fmt):
    img = halves("P", 0, 1)
    img.putpalette([255, 255, 255, 255, 255, 255])  # both white; index 1 transparent
    path = save(img, tmp_path / f"trns.{fmt}", transparency=1)
    with Image.open(path) as opened:
        assert opened.mode == "P" and "transparency" in opened.info
    assert left_right(prepare_image(path, (20, 40), 1)) == pytest.approx((1.0, 0.0), abs=EPS)


def test_rgb_colour_key_transparency(tmp_path):
    path = save(halves("RGB", (255, 255, 255), (10, 20, 30)), tmp_path / "key.png", transparency=(10, 20, 30))
    assert left_right(prepare_image(path, (20, 40), 3)) == pytest.approx((1.0, 0.0), abs=EPS)


def test_16bit_png_scales_by_65535(tmp_path):
    values = np.array([[65535, 32768, 1000, 0]], np.uint16).repeat(4, axis=0)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert stored_mode(path) == "I;16"
    out = prepare_image(path, (4, 4), 1)[0, :, 0]
    assert out[0] == pytest.approx(1.0, abs=EPS)
    assert out[1] == pytest.approx(0.5, abs=1e-4)
    assert out[2] == pytest.approx(1000 / 65535, abs=EPS)  # not clipped to 255, not rounded to 8 bits
    assert out[3] == 0.0
    assert prepare_image(path, (4, 4), 3)[0, 1] == pytest.approx([0.5] * 3, abs=1e-4)


def test_16bit_tiff(tmp_path):
    path = save(Image.fromarray(np.full((6, 6), 32768, np.uint16)), tmp_path / "deep.tif")
    assert prepare_image(path, (3, 3), 1) == pytest.approx(32768 / 65535, abs=EPS)


def test_32bit_int_tiff_uses_declared_depth(tmp_path):
    img = Image.fromarray(np.array([[2**31 - 1, 2**30, 0, 70000]], np.int32))
    path = save(img, tmp_path / "int32.tif")
    assert stored_mode(path) == "I"
    out = prepare_image(path, (1, 4), 1)[0, :, 0]
    assert out == pytest.approx([1.0, 0.5, 0.0, 70000 / (2**31 - 1)], abs=1e-6)


def test_16bit_pgm_read_as_mode_i(tmp_path):
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5\n2 1\n65535\n" + np.array([65535, 32768], ">u2").tobytes())
    assert stored_mode(path) == "I"
    assert prepare_image(path, (1, 2), 1)[0, :, 0] == pytest.approx([1.0, 32768 / 65535], abs=EPS)


def test_float_tiff(tmp_path):
    path = save(Image.fromarray(np.full((5, 5), 0.25, np.float32)), tmp_path / "float.tif")
    assert stored_mode(path) == "F"
    assert prepare_image(path, (5, 5), 1) == pytest.approx(0.25, abs=EPS)


def test_cmyk_jpeg(tmp_path):
    img = halves("CMYK", (0, 0, 0, 0), (0, 0, 0, 255))  # white | black
    path = save(img, tmp_path / "cmyk.jpg", quality=100)
    assert stored_mode(path) == "CMYK"
    light, dark = left_right(prepare_image(path, (20, 40), 1)[:, 4:-4])
    assert light > 0.95 and dark < 0.05


def test_ycbcr_image(tmp_path):
    rgb = halves("RGB", (250, 250, 250), (0, 0, 200))
    path = save(rgb.convert("YCbCr"), tmp_path / "ycc.tif")
    assert stored_mode(path) == "YCbCr"
    out = prepare_image(path, (20, 40), 3)
    assert np.abs(out - prepare_image(rgb, (20, 40), 3)).max() < 4 * Q


@pytest.mark.parametrize(
    ("orientation", "corner"), [(1, "top-left"), (6, "top-right"), (8, "bottom-left"), (3, "bottom-right")]
)
def test_exif_orientation_rotates_jpeg(tmp_path, orientation, corner):
    # Stored 60 wide x 30 high, bright block in the top-left corner.
    stored = np.zeros((30, 60), np.uint8)
    stored[:10, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(Image.fromarray(stored).convert("RGB"), tmp_path / "phone.jpg", exif=exif, quality=95)
    with Image.open(path) as stored_img:
        assert stored_img.getexif()[0x0112] == orientation
    upright = load_image(path)
    assert upright.size == ((30, 60) if orientation in (6, 8) else (60, 30))
    height, width = upright.size[1], upright.size[0]
    out = prepare_image(path, (height, width), 1)[..., 0]
    bright = np.argwhere(out > 0.5)
    row, col = bright.mean(axis=0)
    expected = {
        "top-left": (row < height / 2, col < width / 2),
        "top-right": (row < height / 2, col > width / 2),
        "bottom-left": (row > height / 2, col < width / 2),
        "bottom-right": (row > height / 2, col > width / 2),
    }[corner]
    assert all(expected), (row, col, out.shape)
    assert out.mean() == pytest.approx(1 / 9, abs=0.02)


def test_exif_orientation_from_pil_image_and_applied_once(tmp_path):
    stored = np.zeros((30, 60), np.uint8)
    stored[:10, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(stored), tmp_path / "rot.jpg", exif=exif, quality=95)
    with Image.open(path) as lazy:
        direct = to_array(lazy, (60, 30), 1)
    twice = to_array(load_image(path), (60, 30), 1)  # load_image strips the tag: not rotated again
    assert np.array_equal(direct, twice)
    assert direct[:20, 20:].mean() > 0.9


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animated_first_frame(tmp_path, fmt):
    frames = [Image.new("L", (12, 10), v).convert("RGB") for v in (200, 40, 120)]
    params = {"lossless": True} if fmt == "webp" else {}
    path = save(
        frames[0], tmp_path / f"anim.{fmt}", save_all=True, append_images=frames[1:], duration=50, **params
    )
    assert prepare_image(path, (10, 12), 1) == pytest.approx(200 / 255, abs=EPS)
    with Image.open(path) as opened:
        assert opened.n_frames == 3
        opened.seek(2)  # a PIL image left on a later frame is still read from its first frame
        assert prepare_image(opened, (10, 12), 1) == pytest.approx(200 / 255, abs=EPS)


@pytest.mark.parametrize(
    ("fmt", "tol"),
    [("bmp", EPS), ("webp", 4 * Q), ("jpg", 4 * Q), ("gif", EPS), ("tiff", EPS), ("ppm", EPS), ("tga", EPS)],
)
def test_common_formats(tmp_path, fmt, tol):
    img = halves("RGB", (250, 250, 250), (0, 0, 0), size=(64, 32))
    path = save(img, tmp_path / f"pic.{fmt}")
    out = prepare_image(path, (16, 32), 3)
    light, dark = left_right(out[:, 2:-2])
    assert light == pytest.approx(250 / 255, abs=tol) and dark == pytest.approx(0.0, abs=tol)


def test_a_photo_of_another_shape_is_cropped_to_its_centre_not_squashed():
    wide = np.zeros((30, 90), np.uint8)
    wide[:, 30:60] = 255  # the middle third white: what a person centres in a photo
    out = prepare_image(Image.fromarray(wide), (32, 32), 1)[..., 0]
    assert out.min() > 0.99  # the centre square, all of it white (squashed, two thirds would be black)
    tall = prepare_image(Image.fromarray(wide.T.copy()), (32, 32), 1)[..., 0]
    assert tall.min() > 0.99
    same_shape = prepare_image(Image.fromarray(wide), (16, 48), 1)[..., 0]  # 1:3, as the image: nothing cut
    assert same_shape[:, :14].max() < 0.01 and same_shape[:, 18:30].min() > 0.99


def test_file_like_and_bytes_inputs(tmp_path):
    path = save(halves("L", 0, 255), tmp_path / "up.png")
    data = path.read_bytes()
    buffer = io.BytesIO(data)
    buffer.read(5)  # already partly read: rewound before use
    assert left_right(prepare_image(buffer, (20, 40), 1)) == pytest.approx((0.0, 1.0), abs=EPS)

    class Unseekable:  # e.g. a socket or pipe: read() only
        def read(self):
            return data

    assert left_right(prepare_image(Unseekable(), (20, 40), 1)) == pytest.approx((0.0, 1.0), abs=EPS)


# ----------------------------------------------------------------------------- numpy inputs


def test_numpy_uint8_shapes():
    grey = np.array([[0, 255], [51, 102]], np.uint8)
    assert prepare_image(grey, (2, 2), 1)[..., 0] == pytest.approx(grey / 255, abs=EPS)
    assert np.array_equal(prepare_image(grey[..., None], (2, 2), 1), prepare_image(grey, (2, 2), 1))
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 1] = 255
    assert prepare_image(rgb, (2, 2), 3)[0, 0] == pytest.approx([0, 1, 0], abs=EPS)
    rgba = np.full((2, 2, 4), 255, np.uint8)
    rgba[:, 1, 3] = 0
    out = prepare_image(rgba, (2, 2), 1)[..., 0]
    assert out[:, 0] == pytest.approx(1.0) and out[:, 1] == pytest.approx(0.0)


def test_numpy_uint16():
    grey = np.array([[65535, 32768]], np.uint16)
    assert prepare_image(grey, (1, 2), 1)[0, :, 0] == pytest.approx([1.0, 32768 / 65535], abs=EPS)
    big_endian = grey.astype(">u2")
    assert np.array_equal(prepare_image(big_endian, (1, 2), 1), prepare_image(grey, (1, 2), 1))
    colour = np.zeros((2, 2, 3), np.uint16)
    colour[..., 0] = 65535
    colour[..., 2] = 32768
    assert prepare_image(colour, (2, 2), 3)[0, 0] == pytest.approx([1.0, 0.0, 0.5], abs=Q)


def test_numpy_bool():
    mask = np.array([[True, False], [False, True]])
    assert prepare_image(mask, (2, 2), 1)[..., 0] == pytest.approx(mask.astype(np.float32), abs=EPS)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_float(dtype):
    grey = np.array([[0.0, 0.25], [0.5, 1.0]], dtype)
    assert prepare_image(grey, (2, 2), 1)[..., 0] == pytest.approx(grey.astype(np.float32), abs=1e-3)
    rgb = np.stack([grey, grey * 0, grey], axis=-1)
    out = prepare_image(rgb, (2, 2), 3)
    assert out[..., 0] == pytest.approx(grey.astype(np.float32), abs=Q)
    assert out[..., 1] == pytest.approx(0.0)
    # rounding noise just above 1 is clipped
    assert prepare_image(np.full((2, 2), 1.0 + 1e-4), (2, 2), 1) == pytest.approx(1.0)


def test_numpy_non_contiguous_view():
    arr = np.random.default_rng(4).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    view = arr[::2, ::-2]
    assert np.array_equal(prepare_image(view, (10, 10), 3), prepare_image(view.copy(), (10, 10), 3))


# ----------------------------------------------------------------------------- describe_source


def test_describe_source(tmp_path):
    assert describe_source(tmp_path / "cat.png") == "cat.png"
    assert describe_source(str(tmp_path / "dir" / "dog.jpg")) == "dog.jpg"
    assert describe_source(b"\x89PNG") == "<bytes>"
    assert describe_source(np.zeros((2, 2))) == "<array>"
    assert describe_source(Image.new("L", (2, 2))) == "<PIL image>"
    assert describe_source(io.BytesIO(b"x")) == "<file>"
    assert describe_source(b"x", name="upload.png") == "upload.png"
    assert describe_source(np.zeros((2, 2)), "frame 7") == "frame 7"
    path = save(Image.new("L", (2, 2)), tmp_path / "named.png")
    with path.open("rb") as fh:
        assert describe_source(fh) == "named.png"
    with Image.open(path) as opened:
        assert describe_source(opened) == "named.png"


# ----------------------------------------------------------------------------- bad inputs


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    msg = user_error("empty.png", "empty file (0 bytes)", call=lambda: prepare_image(path))
    assert msg == "empty.png: empty file (0 bytes)"
    user_error("<bytes>", "empty", call=lambda: prepare_image(b""))
    user_error("blank.png", "empty", call=lambda: prepare_image(io.BytesIO(b""), name="blank.png"))


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "cat.txt"
    path.write_text("not an image at all\n")
    msg = user_error("cat.txt", call=lambda: prepare_image(path))
    assert msg == "cat.txt: not a readable image (cannot identify image file)"
    renamed = tmp_path / "cat.png"
    renamed.write_text("meow " * 100)
    user_error(
        "cat.png", "not a readable image", "cannot identify image file", call=lambda: prepare_image(renamed)
    )


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(5)
    good = save(Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)), tmp_path / "good.png")
    data = good.read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[: len(data) // 2])
    msg = user_error(
        "broken.png", "not a readable image", "truncated", "PNG", call=lambda: prepare_image(broken)
    )
    assert msg == "broken.png: not a readable image (truncated PNG: image file is truncated)"
    user_error("<bytes>", "truncated", call=lambda: load_image(data[: len(data) // 2]))
    user_error("stub.png", "not a readable image", call=lambda: prepare_image(data[:30], name="stub.png"))


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(6)
    good = save(Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)), tmp_path / "good.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:3000])
    user_error("broken.jpg", "not a readable image", "truncated JPEG", call=lambda: prepare_image(broken))


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (10000, 10000), (7000, 7000)])
def test_huge_png_refused_from_header(tmp_path, width, height):
    # 30000x30000 trips Pillow's DecompressionBombError, 10000x10000 its warning, 7000x7000 only our limit.
    path = tmp_path / "huge.png"
    path.write_bytes(crafted_png(width, height))
    assert path.stat().st_size < 200
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning escapes either
        msg = user_error("huge.png", "image too large", call=lambda: prepare_image(path))
    assert time.perf_counter() - start < 1.0  # never decoded
    assert msg == f"huge.png: image too large ({width}×{height} px, limit 40 Mpx)"


def test_pixel_limit_is_max_pixels(tmp_path, monkeypatch):
    assert MAX_PIXELS == 40_000_000
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    path = save(Image.new("L", (20, 10)), tmp_path / "small.png")
    user_error("small.png", "image too large (20×10 px, limit 0.0001 Mpx)", call=lambda: prepare_image(path))
    user_error("<array>", "image too large", call=lambda: prepare_image(np.zeros((11, 10), np.uint8)))
    user_error("<PIL image>", "image too large", call=lambda: prepare_image(Image.new("L", (11, 10))))
    assert prepare_image(np.zeros((10, 10), np.uint8), (2, 2)).shape == (2, 2, 1)


def test_missing_file(tmp_path):
    msg = user_error("x.png", call=lambda: prepare_image(tmp_path / "x.png"))
    assert msg == "x.png: no such file"
    user_error("y.png", "no such file", call=lambda: prepare_image(str(tmp_path / "nodir" / "y.png")))


def test_directory(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    user_error("photos", "is a directory", call=lambda: prepare_image(folder))


def test_nan_and_inf_arrays():
    bad = np.zeros((4, 4), np.float32)
    bad[1, 1] = np.nan
    user_error("<array>", "NaN", call=lambda: prepare_image(bad))
    bad[1, 1] = np.inf
    user_error("frame.npy", "infinite", call=lambda: prepare_image(np.stack([bad] * 3, -1), name="frame.npy"))


def test_float_array_out_of_range():
    msg = user_error("<array>", "[0, 1]", "255", call=lambda: prepare_image(np.full((4, 4), 255.0)))
    assert "scale" in msg
    user_error("<array>", "[0, 1]", call=lambda: prepare_image(np.full((4, 4), -0.5)))


@pytest.mark.parametrize("shape", [(8, 8, 5), (8, 8, 2), (8,), (2, 8, 8, 3), (0, 8), (8, 0, 3)])
def test_bad_array_shapes(shape):
    msg = user_error("<array>", str(shape), call=lambda: prepare_image(np.zeros(shape, np.uint8)))
    assert "shape" in msg


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint32, np.complex64, object])
def test_bad_array_dtypes(dtype):
    user_error("<array>", "unsupported array dtype", call=lambda: prepare_image(np.zeros((4, 4), dtype)))


@pytest.mark.parametrize("source", [42, None, [[0, 1], [1, 0]], 3.5])
def test_unsupported_input_types(source):
    label = f"<{type(source).__name__}>"
    user_error(label, "unsupported input type", call=lambda: prepare_image(source))


def test_text_mode_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with path.open() as fh:
        user_error("notes.png", "text mode", call=lambda: prepare_image(fh))


def test_unsupported_format_is_named(tmp_path):
    path = tmp_path / "drawing.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    user_error("drawing.eps", "unsupported image format (EPS)", call=lambda: prepare_image(path))


def test_bad_target_size_or_channels():
    img = Image.new("L", (4, 4))
    user_error("<PIL image>", "channels", call=lambda: to_array(img, (4, 4), 2))
    user_error("<PIL image>", "size", call=lambda: to_array(img, (0, 4), 1))
    user_error("<PIL image>", "size", call=lambda: to_array(img, (4,), 1))
    user_error(
        "in.png",
        "channels",
        call=lambda: prepare_image(np.zeros((4, 4), np.uint8), channels=4, name="in.png"),
    )


def test_closed_pil_image(tmp_path):
    path = save(Image.new("L", (4, 4)), tmp_path / "gone.png")
    opened = Image.open(path)
    opened.close()
    user_error("gone.png", "not a readable image", call=lambda: prepare_image(opened))


def test_unsupported_colour_mode():
    lab = Image.new("LAB", (4, 4))
    user_error("<PIL image>", "unsupported colour mode LAB", call=lambda: prepare_image(lab))
