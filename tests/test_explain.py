"""Per-head explanations (`predict --explain`): Grad-CAM maps at the image's resolution with values in [0, 1],
one per head, that go where each head's evidence is; per-feature weights for a table row; and the CLI's JSON.

The "where they should differ" case is built, not hoped for: a two-head model learns one head from a dark blob
that appears only on the left of the image and the other from a bright bar that appears only on the right, so
on an image with both, the first head's map must lie on the left and the second head's on the right.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from _images import save_png, shapes

from mtl_core.cli import main
from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.tasks import TaskSpec

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def two_sided(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """16x16 grey images: a dark blob on the left half (head "blob": is it there?) and a bright bar on the right
    half (head "bar": is it there?), each present in half of the images, independently."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 0.03, (n, 16, 16, 1)).astype(np.float32)
    blob, bar = rng.random(n) < 0.5, rng.random(n) < 0.5
    for i in range(n):
        r, c = rng.integers(3, 13), rng.integers(2, 6)
        if blob[i]:
            x[i, r - 2:r + 2, c - 2:c + 2, 0] = 0.0
        if bar[i]:
            x[i, 2:14, 11 + rng.integers(0, 3), 0] = 1.0
    return np.clip(x, 0, 1), blob.astype(np.float32), bar.astype(np.float32)


def train_two_sided(bar_head: HeadSpec):
    import keras

    from mtl_core.engine.models.builder import build_model

    tasks = {"blob": TaskSpec("blob", "binary", class_names=("no", "yes")),
             "bar": TaskSpec("bar", "binary", class_names=("no", "yes"))}
    spec = ModelSpec(input_shape=(16, 16, 1), backbone=("conv:16", "conv:16"),
                     heads=(HeadSpec("blob", trunk=("gap",), hidden=("dense:16",)), bar_head))
    keras.utils.set_random_seed(0)
    model = build_model(spec, tasks)
    # 2,400 images and 12 epochs: with 1,200 and 8 the bar head was sometimes not yet trained to look at its bar
    # (seed 1 on this CPU: every map on the blob's side), so the test hung on the seed, not on Grad-CAM. At this
    # budget seeds 0, 1 and 3 (and 1, 3, 4 at 16 epochs) gave both heads their own side on every test image.
    x, blob, bar = two_sided(2400, 0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(x, {"blob": blob, "bar": bar}, epochs=12, batch_size=64, verbose=0)
    return model, list(tasks.values())


@pytest.fixture(scope="module")
def sided_model():
    return train_two_sided(HeadSpec("bar", trunk=("gap",), hidden=("dense:16",)))


@pytest.fixture(scope="module")
def branched_model():
    """The bar head branches off at the input (branch_at=0): it never reads the shared feature map."""
    return train_two_sided(HeadSpec("bar", trunk=("conv:16", "gap"), hidden=("dense:16",), branch_at=0))


@pytest.mark.parametrize("fixture", ["sided_model", "branched_model"])
def test_each_heads_map_lies_where_its_evidence_is(fixture, request):
    from mtl_core.engine.explain import Explainer

    model, tasks = request.getfixturevalue(fixture)
    x, blob, bar = two_sided(60, 1)
    x = x[(blob == 1) & (bar == 1)][:12]  # images with both: each head answers "yes" from its own side
    maps = Explainer(model, tasks, "image").images(x)
    for head in ("blob", "bar"):
        assert maps[head].shape == (len(x), 16, 16) and maps[head].dtype == np.float32
        assert maps[head].min() >= 0 and maps[head].max() == pytest.approx(1.0)
    left = {h: maps[h][:, :, :8].sum(axis=(1, 2)) / maps[h].sum(axis=(1, 2)) for h in maps}
    assert (left["blob"] > 0.5).mean() >= 0.8, left["blob"]  # the blob head looks left...
    assert (left["bar"] < 0.5).mean() >= 0.8, left["bar"]  # ...the bar head right


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_predict_explain_adds_a_map_per_head_at_the_images_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    x, _ = shapes(n=1, seed=5)
    image = save_png(x[0], tmp_path / "shape.png")
    rc, out, err = run_main(["predict", "--preset", "shapes-3head", str(image), "--explain", "--json"])
    assert rc == 0, err
    outputs = json.loads(out)["predictions"][0]["outputs"]
    for head in ("shape", "orientation", "intensity"):  # intensity sits behind a stop-gradient: it has a map too
        grid = np.asarray(outputs[head]["explanation"])
        assert grid.shape == (32, 32) and grid.min() >= 0 and grid.max() == pytest.approx(1.0)
    assert not np.allclose(outputs["shape"]["explanation"], outputs["orientation"]["explanation"])
    rc, out, err = run_main(["predict", "--preset", "shapes-3head", str(image), "--explain"])
    assert rc == 0 and "[looks at x=" in out


def test_a_table_row_is_explained_by_its_features(monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    (tmp_path / "row.csv").write_text("tenure_months,contract,payment_method,internet,monthly_charges,"
                                      "support_calls\n5,one-year,credit card,dsl,50,2\n")
    rc, out, err = run_main(["predict", "--preset", "churn-spend", str(tmp_path / "row.csv"), "--explain", "--json"])
    assert rc == 0, err
    outputs = json.loads(out)["predictions"][0]["outputs"]
    for head in ("churn", "spend"):
        weights = outputs[head]["explanation"]
        assert list(weights) == ["tenure_months", "contract", "payment_method", "internet", "monthly_charges",
                                 "support_calls"]
        assert all(0 <= v <= 1 for v in weights.values()) and max(weights.values()) == pytest.approx(1.0)


def test_the_predict_page_lays_each_heads_map_over_the_image(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from mtl_core.views import predict as predict_view

    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    x, _ = shapes(n=1, seed=5)
    image = save_png(x[0], tmp_path / "shape.png")
    at = AppTest.from_file(str(WEIGHTS.parent / "app.py"), default_timeout=90)
    at.session_state["preset"] = "shapes-3head"
    at.run()
    at.switch_page("pages/predict.py").run()
    at.toggle(key="predict-explain").set_value(True)
    at.file_uploader(key="upload-shapes-3head").upload("shape.png", image.read_bytes(), "image/png").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    captions = [i.caption for element in at.get("image") for i in element.proto.imgs]
    assert [c for c in captions if c.startswith("where ")] == ["where shape looks", "where orientation looks",
                                                              "where intensity looks"]
    blended = predict_view.overlay(np.zeros((4, 4, 1), np.float32), np.eye(4, dtype=np.float32))
    assert blended.shape == (4, 4, 3) and blended[0, 0, 0] > blended[0, 1, 0]  # red where the map is
