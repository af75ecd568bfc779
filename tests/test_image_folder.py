"""The images preset: a user's folder of images (labels.csv with several targets, or one sub-folder per class)
becomes a multi-task model. Images of mixed sizes and modes are resized to one size; a file that does not
decode or is not there is listed and skipped while the rest trains; a folder with nothing usable is one line.
Trained through the CLI on shapes drawn to PNG, JPEG and RGBA files, then asked about a new file."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from _images import grey_image, rgb_jpeg, rgba_png, save_png, shapes, text_file, truncated_png

from mtl_core.cli import main
from mtl_core.control.data import image_folder
from mtl_core.control.data.shapes import SHAPE_NAMES
from mtl_core.control.presets.images import MOBILENET, SMALL_CNN, backbone_for
from mtl_core.errors import UserError

N = 60


def photo_folder(root: Path, n: int = N) -> Path:
    """Shapes as a user's folder: greyscale PNGs, 256-px RGB JPEGs and RGBA PNGs, a labels.csv with the shape
    (by name) and the brightness in %, plus a broken file and a row naming a file that is not there."""
    root.mkdir(parents=True)
    x, y = shapes(n=n, seed=7)
    rows = ["file,shape,brightness (%)"]
    for i in range(n):
        name = f"img{i:03d}" + (".png", ".jpg", ".png")[i % 3]
        if i % 3 == 0:
            save_png(x[i], root / name)
        elif i % 3 == 1:
            rgb_jpeg(x[i], root / name)
        else:
            rgba_png(x[i], root / name)
        rows.append(f"{name},{SHAPE_NAMES[int(y[i, 0])]},{y[i, 2] * 100:.1f}")
    truncated_png(root / "cut.png")
    rows += ["cut.png,circle,50.0", "gone.png,square,20.0", "../outside.png,ring,10.0"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_a_labels_csv_folder_gives_its_targets_and_skips_what_is_not_there(tmp_path):
    plan = image_folder.scan(photo_folder(tmp_path / "photos"))
    assert plan.layout == "labels.csv" and len(plan.files) == N + 1  # the broken file is found, decoded later
    assert [(t.head, t.kind, t.unit) for t in plan.targets] == [("shape", "multiclass", ""),
                                                              ("brightness", "regression", "%")]
    assert plan.skipped == {"gone.png": f"line {N + 3}: no such file",
                            "../outside.png": f"line {N + 4}: not a file inside the folder"}
    size, channels = image_folder.default_size(plan.files)
    assert (size, channels) == (32, 3)  # two thirds of the files are 32 px (the JPEGs 256): the median; RGB in it

    x, y, skipped = image_folder.load(plan, 32, 1)
    assert x.shape == (N, 32, 32, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert set(y) == {"shape", "brightness"} and len(y["shape"]) == N
    assert "truncated" in skipped["cut.png"] and "gone.png" in skipped
    only = image_folder.scan(tmp_path / "photos", "shape")
    assert [t.head for t in only.targets] == ["shape"]


def test_one_sub_folder_per_class_is_a_single_class_target(tmp_path):
    x, _ = shapes(n=6, seed=1)
    for i in range(6):
        folder = tmp_path / "pets" / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        save_png(x[i], folder / f"{i}.png")
    plan = image_folder.scan(tmp_path / "pets")
    assert plan.layout == "sub-folders" and len(plan.files) == 6
    assert [(t.head, t.kind, t.class_names) for t in plan.targets] == [("class", "binary", ("cats", "dogs"))]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(), "no images in sub-folders and no labels.csv"),
    (lambda p: (p.mkdir(), save_png(shapes(1)[0][0], p / "a.png")), "(1 loose images: put them in one sub-folder"),
    (lambda p: (p.mkdir(), (p / "labels.csv").write_text("file,kind\nx.png,a\ny.png,b\n")),
     "labels.csv: none of its 2 files is in the folder (e.g. 'x.png')"),
    (lambda p: None, "no such folder"),
    (lambda p: p.write_text("file,kind\n"), "a file, not a folder (the images preset reads a folder of images"),
])
def test_a_folder_with_nothing_usable_is_one_line(tmp_path, make, message):
    make(tmp_path / "in")
    with pytest.raises(UserError) as exc:
        image_folder.scan(tmp_path / "in")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_images_that_do_not_decode_are_skipped_unless_none_does(tmp_path):
    folder = tmp_path / "bad"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    text_file(folder / "a" / "notes.png")
    truncated_png(folder / "b" / "cut.png")
    with pytest.raises(UserError, match=r"^bad: none of its 2 images decodes \(e.g. a/notes.png: not a readable"):
        image_folder.load(image_folder.scan(folder), 32, 1)


def test_the_backbone_follows_the_image_size():
    assert backbone_for(32, 1) == (SMALL_CNN, {}) and backbone_for(64, 3) == (SMALL_CNN, {})
    assert backbone_for(128, 3) == (MOBILENET, {"standardize": False})  # ImageNet network, its own scaling


def test_a_folder_trains_through_the_cli_and_the_model_answers_for_a_new_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    folder = photo_folder(tmp_path / "photos")
    rc, out, err = run_main(["train", "--preset", "images", "--data-dir", str(folder), "--data-option", "size=32",
                             "--epochs", "2", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    card = json.loads((tmp_path / "home" / "models" / doc["model"] / "card.json").read_text())
    assert card["input"]["shape"] == [32, 32, 3] and card["data"]["rows"] == N
    assert set(card["data"]["skipped"]) == {"cut.png", "gone.png", "../outside.png"}
    assert "note: skipped cut.png: " in err and "note: skipped gone.png: line" in err

    new = tmp_path / "new.png"
    grey_image(shapes(n=1, seed=99)[0][0]).resize((100, 100)).save(new)
    rc, out, err = run_main(["predict", "--preset", "images", "--model", doc["model"], str(new), "--json"])
    assert rc == 0, err
    outputs = json.loads(out)["predictions"][0]["outputs"]
    assert outputs["shape"]["label"] in SHAPE_NAMES and outputs["brightness"]["unit"] == "%"

    rc, out, err = run_main(["train", "--preset", "images", "--data-dir", str(folder), "--data-option", "size=33"])
    assert rc == 2 and err.startswith("error: --data-option size=33: choose one of 32, 48, 64, 96, 128")


def test_a_zip_is_unpacked_under_the_session_and_bad_zips_leave_nothing(tmp_path, monkeypatch):
    import zipfile

    from mtl_core.views import your_data as view

    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    folder = photo_folder(tmp_path / "photos", n=24)

    def zipped(entries: dict[str, bytes]) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
        return out.getvalue()

    good = zipped({f"photos/{p.name}": p.read_bytes() for p in folder.iterdir()} | {"photos/notes.txt": b"hi"})
    saved = view.save_zip(good, "photos.zip", "visitor:xyz")
    assert saved.path.parent == tmp_path / "home" / "datasets" / "visitor-xyz"
    assert (saved.path / "labels.csv").is_file() and not (saved.path / "notes.txt").exists()  # images and labels
    assert saved.rows == 25 and saved.columns == ["shape", "brightness (%)"]  # the top folder is unwrapped

    for entries, message in [
        ({"../evil.png": b"x", "a.png": b"y"}, "'../evil.png' points outside the folder; nothing was unpacked"),
        ({"/etc/evil.png": b"x"}, "'/etc/evil.png' points outside the folder"),
        ({"readme.txt": b"no pictures"}, "no images in the zip"),
    ]:
        with pytest.raises(UserError, match=f"^bad.zip: {message}"):
            view.save_zip(zipped(entries), "bad.zip", "visitor:xyz")
    with pytest.raises(UserError, match="^bad.zip: not a zip file$"):
        view.save_zip(b"PK but not really", "bad.zip", "visitor:xyz")
    assert sorted(p.name for p in saved.path.parent.iterdir()) == [saved.path.name]  # nothing half-unpacked
