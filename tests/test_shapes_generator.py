"""The synthetic shapes generator: format, determinism, argument checks, and that every target can be
read back from the pixels with cheap models (scikit-learn / numpy only, no TensorFlow)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from mtl_core.control.data.shapes import N_ORIENTATIONS, SHAPE_NAMES, generate_shapes
from mtl_core.errors import UserError


@pytest.fixture(scope="module")
def default_data() -> tuple[np.ndarray, np.ndarray]:
    return generate_shapes(3000, seed=0, noise=0.3)


def _box_sum(x: np.ndarray, k: int) -> np.ndarray:
    """Sum over the k x k window (k odd) centred on each pixel of each image, zero padded."""
    p = k // 2
    padded = np.pad(x, ((0, 0), (p, p), (p, p)))
    return sliding_window_view(padded, (k, k), axis=(1, 2)).sum(axis=(-1, -2))


def _smooth3(x: np.ndarray) -> np.ndarray:
    """3x3 box mean, so a single noisy pixel cannot pass for the marker dot."""
    return _box_sum(x, 3) / 9


def _estimate_orientation(x: np.ndarray) -> np.ndarray:
    """Orientation class from pixels alone: angle of the marker dot around the shape's centroid.

    The marker is found as the strongest small bright blob: 3x3 mean minus the mean of the ring around
    it out to 5x5 (a flat bright fill scores ~0 there, a dot on dark background scores high). The shape's
    centre is the intensity-weighted centroid of the bright pixels away from the marker.
    """
    n = len(x)
    inner, outer = _box_sum(x, 3), _box_sum(x, 5)
    blob = inner / 9 - (outer - inner) / 16
    my, mx = np.divmod(blob.reshape(n, -1).argmax(axis=1), x.shape[2])
    yy, xx = np.mgrid[: x.shape[1], : x.shape[2]]
    d2 = (yy[None] - my[:, None, None]) ** 2 + (xx[None] - mx[:, None, None]) ** 2
    w = np.where((d2 > 9) & (inner / 9 > 0.12), x, 0.0)
    cy = (w * yy).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    cx = (w * xx).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    angle = np.arctan2(-(my - cy), mx - cx)  # image rows grow downwards; the generator's y is up
    return np.round(angle / (2 * np.pi) * N_ORIENTATIONS).astype(int) % N_ORIENTATIONS


def _circular_class_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    d = (pred - true) % N_ORIENTATIONS
    return np.minimum(d, N_ORIENTATIONS - d)


# --- format -------------------------------------------------------------------------------------------


def test_shapes_dtypes_and_ranges(default_data):
    x, y = default_data
    assert x.shape == (3000, 32, 32) and x.dtype == np.float32
    assert y.shape == (3000, 3) and y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert len(SHAPE_NAMES) == 10 and len(set(SHAPE_NAMES)) == 10
    a, b, c = y[:, 0], y[:, 1], y[:, 2]
    assert np.array_equal(a, np.round(a)) and a.min() >= 0 and a.max() <= 9
    assert np.array_equal(b, np.round(b)) and b.min() >= 0 and b.max() <= N_ORIENTATIONS - 1
    assert c.min() >= 0.0 and c.max() <= 1.0


def test_single_image_and_numpy_int():
    x, y = generate_shapes(np.int64(1), seed=np.int64(3), noise=0)
    assert x.shape == (1, 32, 32) and y.shape == (1, 3)


def test_classes_balanced_and_intensity_uniform(default_data):
    _, y = default_data
    a_counts = np.bincount(y[:, 0].astype(int), minlength=10)
    b_counts = np.bincount(y[:, 1].astype(int), minlength=N_ORIENTATIONS)
    # Expected 300 per shape class and 93.75 per orientation class; bounds are about 5 std wide.
    assert a_counts.min() >= 220 and a_counts.max() <= 380, a_counts
    assert b_counts.min() >= 50 and b_counts.max() <= 140, b_counts
    c = y[:, 2]
    assert abs(c.mean() - 0.5) < 0.03
    assert np.histogram(c, bins=10, range=(0, 1))[0].min() >= 220


def test_marker_is_brightest_and_shape_visible_at_zero_intensity():
    x, y = generate_shapes(500, seed=4, noise=0.0)
    # The marker dot (brightness 1.0) survives antialiasing as at least one near-white pixel...
    assert x.reshape(len(x), -1).max(axis=1).min() > 0.9
    # ...while the fill stays well below it, even at C = 1.
    smooth = _smooth3(x)
    assert np.all(smooth.max(axis=(1, 2)) > 0.5)
    dim = y[:, 2] < 0.1
    assert dim.sum() > 20
    # Even the dimmest shapes (C near 0) cover plenty of clearly-above-background pixels.
    assert ((x[dim] > 0.12).sum(axis=(1, 2)) > 20).all()


# --- determinism and noise ----------------------------------------------------------------------------


def test_same_seed_is_byte_identical_other_seed_differs():
    x1, y1 = generate_shapes(200, seed=7, noise=0.5)
    x2, y2 = generate_shapes(200, seed=7, noise=0.5)
    assert x1.tobytes() == x2.tobytes() and y1.tobytes() == y2.tobytes()
    x3, y3 = generate_shapes(200, seed=8, noise=0.5)
    assert not np.array_equal(x1, x3) and not np.array_equal(y1, y3)


def test_noise_knob_changes_background_noise():
    x0, _ = generate_shapes(300, seed=1, noise=0.0)
    x1, _ = generate_shapes(300, seed=1, noise=1.0)
    # The 4x4 corners are always background (shape + marker stay within ~15.5 px of the centre).
    corners = np.s_[:, :4, :4]
    assert x1[corners].std() > 4 * x0[corners].std()
    assert x0[corners].std() < 0.03


# --- argument checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": -5}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": "10"}, "n"),
        ({"n": True}, "n"),
        ({"noise": -0.1}, "noise"),
        ({"noise": 1.5}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"noise": "high"}, "noise"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_raise_user_error(kwargs, name):
    with pytest.raises(UserError, match=rf"^{name} ") as info:
        generate_shapes(**kwargs)
    assert "\n" not in str(info.value)


# --- learnability from pixels -------------------------------------------------------------------------


def test_shape_class_learnable_from_pixels(default_data):
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x, y = default_data
    feats = x.reshape(len(x), -1)
    a = y[:, 0].astype(int)
    # One BLAS thread: multi-threaded BLAS spin-waits badly when the cores are busy (5x slower here).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # a ConvergenceWarning would not change the point
        model = LogisticRegression(C=0.01, max_iter=300).fit(feats[:2000], a[:2000])
    acc = model.score(feats[2000:], a[2000:])
    assert acc >= 0.3, f"shape accuracy {acc:.3f} (chance 0.10)"  # measured ~0.56


def test_intensity_learnable_from_pixels(default_data):
    from sklearn.linear_model import Ridge

    x, y = default_data
    # Sorted pixel values: a rotation- and position-invariant view of the brightness histogram.
    feats = np.sort(x.reshape(len(x), -1), axis=1)
    c = y[:, 2]
    pred = Ridge(alpha=1.0).fit(feats[:2000], c[:2000]).predict(feats[2000:])
    mae = np.abs(pred - c[2000:]).mean()
    const_mae = np.abs(c[2000:] - c[:2000].mean()).mean()
    # Measured ~0.027 vs ~0.244.
    assert mae < 0.4 * const_mae, f"intensity MAE {mae:.3f} vs constant {const_mae:.3f}"


# Chance is 1/32 ~ 0.03 exact and 3/32 ~ 0.09 within one class. Measured (exact, within +-1):
# noise 0: ~0.93, 1.0; noise 0.3: ~0.93, 1.0; noise 1: ~0.67, ~0.98.
@pytest.mark.parametrize(
    ("noise", "min_exact", "min_near"),
    [
        (0.0, 0.6, 0.9),
        (0.3, 0.6, 0.9),
        (1.0, 0.3, 0.6),
    ],
)
def test_orientation_readable_from_marker(noise, min_exact, min_near):
    x, y = generate_shapes(1000, seed=2, noise=noise)
    err = _circular_class_error(_estimate_orientation(x), y[:, 1].astype(int))
    exact, near = (err == 0).mean(), (err <= 1).mean()
    assert exact >= min_exact, f"exact orientation {exact:.3f}"
    assert near >= min_near, f"orientation within +-1 class {near:.3f}"


def test_orientation_readable_for_symmetric_shapes(default_data):
    """Circles and rings have no orientation of their own: the marker alone must carry it."""
    x, y = default_data
    sym = np.isin(y[:, 0].astype(int), [SHAPE_NAMES.index("circle"), SHAPE_NAMES.index("ring")])
    err = _circular_class_error(_estimate_orientation(x[sym]), y[sym, 1].astype(int))
    assert (err <= 1).mean() >= 0.9  # measured 1.0
