"""A synthetic "AQI" computed from how hazy an image looks (cifar10-aqi, seed 000).

Seed 000 trains an AQI regression head on CIFAR-10 with a "synthetic Air Quality Index based on the
visual features of the image" and does not say how it is computed. This module defines one, as a
deterministic function of the pixels (never random: the same image always gets the same value).
It is NOT a real air-quality measurement: CIFAR-10 images carry no air-quality information; the head
learns to read haze-like appearance, which is a well-defined, learnable target.

Haze washes a scene out: contrast drops, colours fade toward grey, and the picture tends toward a light
grey. For an RGB image with values in [0, 1] (Rec. 601 luma Y = 0.299 R + 0.587 G + 0.114 B):

* contrast    ``c = std(Y)`` over the image's pixels
* saturation  ``s = mean((max(R,G,B) - min(R,G,B)) / max(R,G,B))`` (HSV saturation; 0 where max = 0)
* brightness  ``b = mean(Y)``

and the haze score, each term in [0, 1]::

    low_contrast   = 1 - min(c / 0.25, 1)          # a luma std of 0.25 or more is crisp
    low_saturation = 1 - s
    greyness       = max(0, 1 - |b - 0.75| / 0.75)   # closeness to a light haze grey (0.75)
    h = (0.55 * low_contrast + 0.45 * low_saturation) * (0.4 + 0.6 * greyness)

``AQI = round(500 * h, 1)``: range [0, 500], unit "AQI (synthetic)". A flat light-grey image scores
500; a saturated, high-contrast image scores near 0. Blending any image toward the haze grey never
lowers its AQI (contrast and saturation fall, brightness moves toward 0.75), and raises it unless the
image is already flat grey.
"""

from __future__ import annotations

import numpy as np

AQI_UNIT = "AQI (synthetic)"
AQI_RANGE = (0.0, 500.0)
HAZE_GREY = 0.75
CRISP_CONTRAST = 0.25
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def haze_score(images: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(N, H, W, 3) or (H, W, 3) RGB in [0, 1] (uint8 is divided by 255) -> haze score h in [0, 1] per image."""
    x = np.asarray(images)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"haze_score: expected RGB images (N, H, W, 3), got shape {np.shape(images)}")
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), chunk):  # bounded memory on 60,000 images
        part = x[start:start + chunk]
        part = part.astype(np.float32) / 255.0 if part.dtype == np.uint8 else part.astype(np.float32, copy=False)
        luma = part @ _LUMA
        flat = luma.reshape(len(part), -1)
        contrast = flat.std(axis=1, dtype=np.float64)
        brightness = flat.mean(axis=1, dtype=np.float64)
        high, low = part.max(axis=-1), part.min(axis=-1)
        sat = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
        saturation = sat.reshape(len(part), -1).mean(axis=1, dtype=np.float64)
        low_contrast = 1.0 - np.minimum(contrast / CRISP_CONTRAST, 1.0)
        low_saturation = 1.0 - np.clip(saturation, 0.0, 1.0)
        greyness = np.maximum(0.0, 1.0 - np.abs(brightness - HAZE_GREY) / HAZE_GREY)
        out[start:start + len(part)] = (0.55 * low_contrast + 0.45 * low_saturation) * (0.4 + 0.6 * greyness)
    out = np.clip(out, 0.0, 1.0)
    return out[0] if single else out


def synthetic_aqi(images: np.ndarray) -> np.ndarray:
    """AQI (synthetic) in [0, 500], rounded to 0.1, float32: ``round(500 * haze_score(images), 1)``."""
    return np.round(AQI_RANGE[1] * haze_score(images), 1).astype(np.float32)
