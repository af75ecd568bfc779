"""Procedural "shapes" dataset: a seeded stand-in for a three-head multi-task dataset.

Format (same as the dataset it stands in for):

* ``X``: ``(N, 32, 32)`` float32 grayscale images in [0, 1] (background dark, shape bright).
* ``y``: ``(N, 3)`` float32, columns ``[A, B, C]``:

  - **A, shape class** (0..9): which of :data:`SHAPE_NAMES` is drawn. Drawn uniformly at random.
  - **B, orientation class** (0..31): ``k`` means the angle ``theta = 2*pi*k/32``, measured
    counter-clockwise from "pointing right" (image x to the right, y *up*, so a shape pointing
    "up" in the picture has k = 8). Drawn uniformly at random. The shape is rotated
    counter-clockwise by ``theta`` about its centre, AND a small marker dot is drawn outside the
    shape at angle ``theta`` from the shape's centre (a fixed gap past the shape's outer radius).
    The dot is what makes B readable for rotationally symmetric shapes (circle, ring, square...),
    which alone carry no orientation. Shapes with a "front" (triangle vertex, arrow tip, ellipse's
    long axis, semicircle's round side) face the marker. The "centre" is the centre of the shape's
    bounding circle, which for the arrow, L-shape and semicircle is not their centre of mass.
  - **C, intensity** (float in [0, 1]): drawn uniformly. The shape is filled with brightness
    ``0.2 + 0.5 * C`` (so even C = 0 is visible, and the fill never reaches the marker's level).
    The marker dot always has brightness 1.0, so it is the brightest thing in the image.

Rendering: each image is drawn with PIL at 4x resolution (128 x 128) and box-averaged down to
32 x 32, which antialiases the edges. The background is 0. The shape's outer radius is 7.5 px (at scale
1) and the marker dot (radius 1.4 px) sits 2 px beyond it, so shape and marker stay inside the canvas
under the largest jitter.

Difficulty, ``noise`` in [0, 1]:

* Gaussian pixel noise with ``sigma = 0.02 + 0.25 * noise`` is added to every pixel.
* The shape's centre is shifted by up to ``+-2 * noise`` px in x and in y (uniform).
* The shape's size is scaled by a factor uniform in ``[1 - 0.15 * noise, 1 + 0.15 * noise]``.

Finally X is clipped to [0, 1]; ``y[:, 2]`` holds C exactly as drawn (as float32). The same
``(n, seed, noise, drawings)`` always gives byte-identical arrays (all randomness comes from
``numpy.random.default_rng(seed)``).

Plain drawings, ``drawings`` in [0, 1] (default 0): that fraction of the images is drawn the way a person
draws a shape, not in the generator's own style, so a model also learns the shapes people upload: no
marker dot, any rotation, filled or outlined (0.4 to 2.5 px lines), any grey on any grey (contrast 0.15 to
0.9, light on dark or dark on light: a colour image reaches the model as grey), scaled 0.55 to 1.9 (up to
filling the frame) and moved anywhere on the canvas, and sometimes blurred, unevenly lit and noisy like a
photo. Only their shape is labelled: without the marker there is no orientation, and without the
generator's fill scale no intensity, so ``y[:, 1]`` is -1 and ``y[:, 2]`` NaN (missing labels, which
training leaves out per head).

Invalid arguments (``n`` not an integer >= 1, ``seed`` not an integer >= 0, ``noise`` outside
[0, 1]) raise :class:`mtl_core.errors.UserError`. Only numpy and PIL are used here, so generating data
never imports TensorFlow.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mtl_core.errors import UserError

SHAPE_NAMES: tuple[str, ...] = (
    "circle",
    "ellipse",
    "triangle",
    "square",
    "ring",
    "star",
    "cross",
    "arrow",
    "L-shape",
    "semicircle",
)
N_ORIENTATIONS = 32

SIZE = 32  # output image side, px
_SS = 4  # supersampling factor: draw at 128 x 128, box-average down to 32 x 32
_RADIUS = 7.5  # shape's outer radius at scale 1, output px
_MARKER_GAP = 2.0  # from the shape's outer radius to the marker dot's edge, px
_MARKER_RADIUS = 1.4  # px; big enough to survive downsampling and noise as a blob
_MARKER_VALUE = 1.0
_FILL_FLOOR, _FILL_SPAN = 0.2, 0.5  # fill = floor + span * C, always below the marker's 1.0


def _regular(k: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    t = phase + 2 * np.pi * np.arange(k) / k
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = np.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _semicircle() -> np.ndarray:
    # Half-disc bulging towards +x; centred so its farthest point is within radius 1.
    t = np.linspace(-np.pi / 2, np.pi / 2, 33)
    return np.stack([-0.35 + 0.9 * np.cos(t), 0.9 * np.sin(t)], axis=1)


# Each shape: (outer polygon, hole polygon or None) in unit coordinates, x right, y up, centre at
# the origin, every vertex within radius 1 (so the marker placed past radius 1 never touches it).
# Shapes with a natural "front" (triangle, arrow, semicircle...) point along +x, i.e. at the marker.
_SHAPES: tuple[tuple[np.ndarray, np.ndarray | None], ...] = (
    (_regular(64), None),  # circle
    (_regular(64) * np.array([1.0, 0.5]), None),  # ellipse, long axis towards the marker
    (_regular(3), None),  # triangle, one vertex towards the marker
    (_regular(4, phase=np.pi / 4), None),  # square, a side facing the marker
    (_regular(64), _regular(64, radius=0.55)),  # ring: the hole tells it apart from the circle
    (_star(), None),  # 5-pointed star
    (
        np.array(
            [
                [0.95, 0.25],
                [0.25, 0.25],
                [0.25, 0.95],
                [-0.25, 0.95],
                [-0.25, 0.25],
                [-0.95, 0.25],
                [-0.95, -0.25],
                [-0.25, -0.25],
                [-0.25, -0.95],
                [0.25, -0.95],
                [0.25, -0.25],
                [0.95, -0.25],
            ]
        ),
        None,
    ),  # cross (plus sign)
    (
        np.array(
            [
                [1.0, 0.0],
                [0.1, 0.65],
                [0.1, 0.22],
                [-0.95, 0.22],
                [-0.95, -0.22],
                [0.1, -0.22],
                [0.1, -0.65],
            ]
        ),
        None,
    ),  # arrow pointing at the marker
    (
        np.array([[-0.7, 0.7], [-0.2, 0.7], [-0.2, -0.2], [0.7, -0.2], [0.7, -0.7], [-0.7, -0.7]]),
        None,
    ),  # L-shape
    (_semicircle(), None),  # semicircle, round side towards the marker
)
assert len(_SHAPES) == len(SHAPE_NAMES)


def _to_pixels(
    poly: np.ndarray,
    theta: float,
    cx: float,
    cy: float,
    radius: float,
) -> list[tuple[float, float]]:
    """Rotate unit-coordinate vertices counter-clockwise by theta, scale, and map to supersampled pixels."""
    c, s = np.cos(theta), np.sin(theta)
    x = poly[:, 0] * c - poly[:, 1] * s
    y = poly[:, 0] * s + poly[:, 1] * c
    # Image rows grow downwards, so "y up" becomes minus.
    px = (cx + radius * x) * _SS
    py = (cy - radius * y) * _SS
    return list(zip(px.tolist(), py.tolist(), strict=True))


def _coverage(img: Image.Image) -> np.ndarray:
    """Box-average each _SS x _SS block of a 0/255 mask: antialiased coverage in [0, 1] per output pixel."""
    return np.asarray(img).reshape(SIZE, _SS, SIZE, _SS).mean(axis=(1, 3)) / 255.0


def _check_args(n: object, seed: object, noise: object) -> tuple[int, int, float]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"n must be an integer >= 1, not {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be an integer >= 0, not {seed!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)):
        raise UserError(f"noise must be a number in [0, 1], not {noise!r}")
    if not 0.0 <= float(noise) <= 1.0:  # also rejects NaN
        raise UserError(f"noise must be in [0, 1], not {noise!r}")
    return int(n), int(seed), float(noise)


def generate_shapes(n: int = 3000, seed: int = 0, noise: float = 0.3,
                    drawings: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` shape images and their three targets; see the module docstring.

    Returns ``X`` of shape ``(n, 32, 32)`` float32 in [0, 1] and ``y`` of shape ``(n, 3)`` float32
    with columns [shape class 0..9, orientation class 0..31, intensity in [0, 1]] (-1 and NaN for the
    plain drawings, a ``drawings`` fraction of them). Raises :class:`~mtl_core.errors.UserError` for an
    invalid argument.
    """
    n, seed, noise = _check_args(n, seed, noise)
    if isinstance(drawings, bool) or not isinstance(drawings, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(drawings) <= 1.0:
        raise UserError(f"drawings must be a fraction in [0, 1], not {drawings!r}")
    rng = np.random.default_rng(seed)
    # Draw every random quantity up front, in a fixed order, so the output depends only on the args.
    shape_cls = rng.integers(0, len(SHAPE_NAMES), size=n)
    orient_cls = rng.integers(0, N_ORIENTATIONS, size=n)
    intensity = rng.random(n)
    shift = rng.uniform(-2.0 * noise, 2.0 * noise, size=(n, 2))
    scale = rng.uniform(1.0 - 0.15 * noise, 1.0 + 0.15 * noise, size=n)
    pixel_noise = rng.normal(0.0, 0.02 + 0.25 * noise, size=(n, SIZE, SIZE))

    big = SIZE * _SS
    shape_cov = np.empty((n, SIZE, SIZE))
    marker_cov = np.empty((n, SIZE, SIZE))
    for i in range(n):
        theta = 2 * np.pi * orient_cls[i] / N_ORIENTATIONS
        cx, cy = SIZE / 2 + shift[i, 0], SIZE / 2 + shift[i, 1]
        radius = _RADIUS * scale[i]
        outer, hole = _SHAPES[shape_cls[i]]

        img = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(img)
        draw.polygon(_to_pixels(outer, theta, cx, cy, radius), fill=255)
        if hole is not None:
            draw.polygon(_to_pixels(hole, theta, cx, cy, radius), fill=0)
        shape_cov[i] = _coverage(img)

        # Marker: a dot just outside the shape's outer radius, in the direction theta (y up).
        dist = radius + _MARKER_GAP + _MARKER_RADIUS
        mx, my = (cx + dist * np.cos(theta)) * _SS, (cy - dist * np.sin(theta)) * _SS
        rr = _MARKER_RADIUS * _SS
        dot = Image.new("L", (big, big), 0)
        ImageDraw.Draw(dot).ellipse([mx - rr, my - rr, mx + rr, my + rr], fill=255)
        marker_cov[i] = _coverage(dot)

    fill = (_FILL_FLOOR + _FILL_SPAN * intensity)[:, None, None]
    # Shape and marker never overlap (gap > 0), but blend anyway so an edge pixel stays <= 1.
    x = shape_cov * fill * (1.0 - marker_cov) + marker_cov * _MARKER_VALUE
    x = np.clip(x + pixel_noise, 0.0, 1.0).astype(np.float32)

    y = np.stack([shape_cls, orient_cls, intensity], axis=1).astype(np.float32)
    if drawings > 0:  # a separate generator: the generator-style images stay as they were without drawings
        plain = np.random.default_rng([seed, 1]).random(n) < float(drawings)
        x[plain], y[plain, 1], y[plain, 2] = plain_drawings(shape_cls[plain], seed), -1.0, np.nan
    return x, y


def plain_drawings(shape_cls: np.ndarray, seed: int) -> np.ndarray:
    """(len(shape_cls), 32, 32) images of the given shapes drawn plainly (see the module docstring)."""
    from PIL import ImageFilter

    rng = np.random.default_rng([seed, 2])
    big = SIZE * _SS
    out = np.empty((len(shape_cls), SIZE, SIZE), np.float32)
    for i, cls in enumerate(shape_cls):
        radius = _RADIUS * rng.uniform(0.55, 1.9)  # up to a shape that fills the frame
        room = max(SIZE / 2 - radius - 1.0, 0.0)
        cx, cy = SIZE / 2 + rng.uniform(-room, room), SIZE / 2 + rng.uniform(-room, room)
        theta = rng.uniform(0, 2 * np.pi)
        outer, hole = _SHAPES[cls]
        img = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(img)
        if rng.random() < 0.5:  # filled
            draw.polygon(_to_pixels(outer, theta, cx, cy, radius), fill=255)
            if hole is not None:
                draw.polygon(_to_pixels(hole, theta, cx, cy, radius), fill=0)
        else:  # outlined, as with a pen
            width = max(1, round(rng.uniform(0.4, 2.5) * _SS))
            for poly in (outer, hole):
                if poly is not None:
                    points = _to_pixels(poly, theta, cx, cy, radius)
                    draw.line([*points, points[0]], fill=255, width=width, joint="curve")
        cover = _coverage(img)
        background = rng.uniform(0, 1)
        contrast = rng.uniform(0.15, 0.9) * rng.choice([-1.0, 1.0])
        if not 0 <= background + contrast <= 1:
            contrast = -contrast
        if not 0 <= background + contrast <= 1:  # neither way fits: the largest that does
            contrast = (1 - background) if background < 0.5 else -background
        picture = background + contrast * cover
        if rng.random() < 0.5:  # photographed: out of focus
            blurred = Image.fromarray((picture * 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
            picture = np.asarray(blurred, np.float32) / 255.0
        if rng.random() < 0.3:  # unevenly lit
            ramp = np.linspace(-1, 1, SIZE)
            angle = rng.uniform(0, 2 * np.pi)
            picture = picture + rng.uniform(0.05, 0.2) * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None])
        picture = picture + rng.normal(0, rng.uniform(0, 0.06), (SIZE, SIZE))
        out[i] = np.clip(picture, 0, 1)
    return out
