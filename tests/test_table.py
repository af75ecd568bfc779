"""The table preset: any CSV with several target columns becomes a multi-task model. Kinds, class names, head
names and units are read from the data; ids and constants are left out, a leaking feature is flagged; missing
features are imputed and counted in the card; bad targets are one line. Trained through the CLI on
scikit-learn's bundled data sets written as CSV (the real format a user brings), with words as binary
labels and holes in the features; churn-spend takes two-valued labels of any spelling."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.cli import main
from mtl_core.control.data import table_schema as schema
from mtl_core.control.data.tabular import read_csv
from mtl_core.control.presets import get_preset
from mtl_core.errors import UserError


def frame_of(**columns) -> pd.DataFrame:
    return pd.DataFrame({k: [str(v) for v in vs] for k, vs in columns.items()}, dtype=str)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------------- what a column means


def test_kinds_class_names_head_names_and_units_come_from_the_data():
    f = frame_of(outcome=["won", "lost", "won", ""], plan=["a", "b", "c", "a"], smoker=["yes", "no", "no", "yes"],
                 grade=["1", "0", "1", "1"], **{"price (EUR)": ["1.5", "2", "NA", "7"], "Body mass [kg]": [1, 2, 3, 4]})
    got = {c: schema.infer_target(f, c, None, "t.csv") for c in f.columns}
    assert (got["outcome"].kind, got["outcome"].class_names) == ("binary", ("lost", "won"))  # its own words
    assert (got["smoker"].class_names, got["grade"].class_names) == (("no", "yes"), ("0", "1"))  # negative first
    assert (got["plan"].kind, got["plan"].class_names) == ("multiclass", ("a", "b", "c"))
    assert (got["price (EUR)"].kind, got["price (EUR)"].head, got["price (EUR)"].unit) == ("regression", "price", "EUR")
    assert (got["Body mass [kg]"].head, got["Body mass [kg]"].unit) == ("Body_mass", "kg")
    np.testing.assert_array_equal(schema.labels(f, got["outcome"]), [1, 0, 1, -1])  # "" is a missing label
    assert np.isnan(schema.labels(f, got["price (EUR)"])[2])  # "NA" in a number column is missing
    assert schema.infer_target(f, "grade", "multiclass", "t.csv").kind == "multiclass"  # a kind given wins


@pytest.mark.parametrize(("column", "kind", "message"), [
    ("nope", None, "t.csv: no column 'nope' (columns: "),
    ("same", None, "t.csv: column 'same' has a single value ('x'); nothing to learn"),
    ("words", "regression", "t.csv: column 'words' holds text ('red'), so it cannot be a regression target"),
    ("words", "binary", "t.csv: column 'words' has 3 distinct values, a binary target has 2"),
    ("ids", None, "t.csv: column 'ids' has 60 distinct values, more than the 50 classes"),
])
def test_a_target_that_cannot_be_learned_is_one_line(column, kind, message):
    f = frame_of(same=["x"] * 60, words=(["red", "green", "blue"] * 20), ids=[f"u{i}" for i in range(60)])
    with pytest.raises(UserError) as exc:
        schema.infer_target(f, column, kind, "t.csv")
    assert str(exc.value).startswith(message), exc.value


def test_targets_are_parsed_and_an_unknown_kind_is_named():
    assert schema.parse_targets(["a", "b=binary", "c = regression"]) == [("a", None), ("b", "binary"),
                                                                          ("c", "regression")]
    assert schema.parse_targets("x=multiclass+y") == [("x", "multiclass"), ("y", None)]
    with pytest.raises(UserError, match="^--target b=ordinal: unknown kind 'ordinal'"):
        schema.parse_targets(["b=ordinal"])


def test_ids_and_constants_are_left_out_and_a_leak_is_flagged():
    n = 40
    rng = np.random.default_rng(0)
    y = rng.normal(size=n)
    f = frame_of(id=range(n), country=["fr"] * n, x=rng.normal(size=n), y=y, y_copy=y * 2 + 1,
                 label=["a", "b"] * 20, label_code=["1", "2"] * 20)
    targets = [schema.infer_target(f, "y", None, "t.csv"), schema.infer_target(f, "label", None, "t.csv")]
    report = schema.choose_features(f, targets, None, "t.csv")
    assert report.features == ["x", "y_copy", "label_code"]
    assert report.excluded == {"id": "an id (a different value in every row)", "country": "constant"}
    assert report.flagged == {"y_copy": "correlates +1.000 with target 'y': a leak?",
                              "label_code": "determines target 'label' exactly: a leak?"}
    named = schema.choose_features(f, targets, ["x", "id"], "t.csv")
    assert named.features == ["x", "id"] and named.excluded == {}  # named features are taken as they are
    with pytest.raises(UserError, match="^t.csv: column 'y' is a target, it cannot also be a feature$"):
        schema.choose_features(f, targets, ["x", "y"], "t.csv")


# ----------------------------------------------------------------------------- real tables, trained


def wine_csv(path: Path) -> Path:
    """scikit-learn's wine data (178 wines, 3 cultivars) with the cultivar by name, alcohol as a second target,
    a few holes in one feature and an id column, as a user's export would have them."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    f = data.frame.rename(columns={"alcohol": "alcohol (%)"})
    f["cultivar"] = [("barolo", "grignolino", "barbera")[t] for t in data.target]
    f = f.drop(columns="target")
    f.loc[[3, 50, 120], "magnesium"] = np.nan
    f.insert(0, "bottle", [f"B{i:03d}" for i in range(len(f))])
    f.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("table")
    path = wine_csv(root / "wine.csv")
    old = {k: os.environ.get(k) for k in ("MTL_HOME", "MTL_WEIGHTS")}
    os.environ.update(MTL_HOME=str(root / "home"), MTL_WEIGHTS=str(root / "no-weights"))
    try:
        rc, out, err = run_main(["train", "--preset", "table", "--data-dir", str(path), "--target", "cultivar",
                                 "--target", "alcohol (%)", "--epochs", "30", "--json"])
        assert rc == 0, err
        doc = json.loads(out)
        card = json.loads((root / "home" / "models" / doc["model"] / "card.json").read_text())
        yield {"path": path, "root": root, "doc": doc, "card": card, "err": err}
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_a_wine_table_trains_one_head_per_target_and_the_card_says_what_the_data_was(wine):
    card, doc = wine["card"], wine["doc"]
    assert doc["model"].startswith("table-") and set(doc["metrics"]) == {"cultivar", "alcohol"}
    tasks = {t["name"]: t for t in card["tasks"]}
    assert tasks["cultivar"]["class_names"] == ["barbera", "barolo", "grignolino"]
    assert (tasks["alcohol"]["kind"], tasks["alcohol"]["unit"]) == ("regression", "%")
    data = card["data"]
    assert (data["name"], data["rows"], len(data["fingerprint"])) == ("wine.csv", 178, 64)
    assert data["imputed"] == {"magnesium": 3} and data["excluded"] == {"bottle": "an id (a different value in "
                                                                                  "every row)"}
    assert data["targets"] == {"cultivar": "cultivar", "alcohol": "alcohol (%)"}
    assert "note: left out column 'bottle'" in wine["err"] and "'magnesium': 3 missing values imputed" in wine["err"]
    # the network learns both heads, and the card has scikit-learn's baseline per head beside it
    test = card["metrics"]["test"]
    assert test["cultivar"]["accuracy"] >= 0.85 and test["alcohol"]["mae"] < 0.6  # alcohol's std is 0.81
    assert set(card["baselines"]) == {"cultivar", "alcohol"}


def test_the_wine_model_predicts_a_csv_with_class_names_units_and_imputation(wine, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(wine["root"] / "home"))
    rows = read_csv(wine["path"]).head(3).drop(columns=["cultivar", "alcohol (%)"])
    rows.loc[1, "magnesium"] = ""
    rows.to_csv(tmp_path / "new.csv", index=False)

    rc, out, err = run_main(["predict", "--preset", "table", "--model", wine["doc"]["model"], str(tmp_path / "new.csv"),
                             "--json"])

    assert rc == 0, err
    items = json.loads(out)["predictions"]
    assert [i["outputs"]["cultivar"]["label"] for i in items] == ["barolo"] * 3  # the first wines are barolo
    assert items[0]["outputs"]["alcohol"]["unit"] == "%"
    assert items[1]["warnings"] == ["column 'magnesium': missing, imputed with the training median 98.0"]


@pytest.mark.parametrize(("args", "message"), [
    ([], "error: --target: name the target column(s) of wine.csv (columns: bottle, "),
    (["--target", "colour"], "error: wine.csv: no column 'colour' (columns: "),
    (["--target", "cultivar=regression"], "error: wine.csv: column 'cultivar' holds text ('barolo')"),
    (["--target", "cultivar", "--features", "hue,cultivar"], "error: wine.csv: column 'cultivar' is a target"),
])
def test_bad_table_options_are_one_line_and_store_nothing(wine, args, message, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    rc, out, err = run_main(["train", "--preset", "table", "--data-dir", str(wine["path"]), *args, "--json"])
    assert (rc, out) == (2, "") and err.splitlines() == [err.strip()] and err.startswith(message), err
    assert not (tmp_path / "home" / "models").exists()


def test_target_is_only_for_the_table_preset():
    rc, out, err = run_main(["train", "--preset", "churn-spend", "--target", "churn"])
    assert rc == 2 and err.startswith("error: --target: churn-spend has its own heads (churn, spend)")


def test_the_table_preset_without_a_file_says_what_it_needs(tmp_path):
    with pytest.raises(UserError, match="--data-dir FILE --target COLUMN"):
        get_preset("table").load_data({"source": "csv"})
    with pytest.raises(UserError, match="a folder, not a file \\(the table preset reads one CSV file\\)"):
        get_preset("table").for_data({"source": "csv", "dir": str(tmp_path), "targets": "x"})


# ----------------------------------------------------------------------------- churn-spend's tolerance


def test_churn_spend_takes_two_valued_labels_of_any_spelling_and_missing_features(tmp_path):
    from mtl_core.control.data.customers import generate_customers

    f = generate_customers(60, seed=3)
    f["churn"] = f["churn"].map({"1": "left", "0": "stayed", "": ""})
    f.loc[[2, 9], "monthly_charges"] = ""
    f.to_csv(tmp_path / "crm.csv", index=False)
    preset = get_preset("churn-spend")
    data = preset.load_data({"source": "csv", "dir": str(tmp_path / "crm.csv")})
    assert data.notes["labels"] == {"churn": {"left": "stays", "stayed": "churns"}}  # sorted: the second churns
    positive = preset.load_data({"source": "csv", "dir": str(tmp_path / "crm.csv"), "churn_positive": "left"})
    assert positive.notes["labels"] == {"churn": {"stayed": "stays", "left": "churns"}}
    np.testing.assert_array_equal(positive.y["churn"] >= 0, f["churn"] != "")
    assert (positive.y["churn"][f["churn"] == "left"] == 1).all()
    with pytest.raises(UserError, match="churn_positive=gone: column 'churn' has the values 'left' and 'stayed'"):
        preset.load_data({"source": "csv", "dir": str(tmp_path / "crm.csv"), "churn_positive": "gone"})


# ----------------------------------------------------------------------------- the app's side (no Streamlit)


def test_the_your_data_view_saves_the_upload_plans_the_heads_and_trains_what_the_cli_would(tmp_path, monkeypatch):
    from mtl_core.control.config import make_config
    from mtl_core.views import train as train_form
    from mtl_core.views import your_data as view

    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    raw = wine_csv(tmp_path / "wine.csv").read_bytes()
    saved = view.save_upload(raw, "wine.csv", "visitor:abc")
    assert saved.path.parent == tmp_path / "home" / "datasets" / "visitor-abc" and saved.rows == 178
    assert view.save_upload(raw, "wine.csv", "visitor:abc").path == saved.path  # same file, same dataset
    roles = {r.column: r for r in view.column_roles(saved.path)}
    assert (roles["cultivar"].kind, roles["bottle"].kind, roles["magnesium"].missing) == ("multiclass", None, 3)

    plan = view.plan(saved.path, {"cultivar": "auto", "alcohol (%)": "auto"})
    assert [(h.head, h.kind) for h in plan.heads] == [("cultivar", "multiclass"), ("alcohol", "regression")]
    assert plan.heads[0].counts == {"barbera": 48, "barolo": 59, "grignolino": 71}  # scikit-learn's class sizes
    assert plan.excluded == {"bottle": "an id (a different value in every row)"}

    options = view.data_options(saved.path, {"cultivar": "auto", "alcohol (%)": "regression"})
    preset = get_preset("table").for_data(options)
    form = train_form.form_defaults(preset)
    form.data_args = view.train_flags(options)
    argv = train_form.train_args(preset, form)
    assert argv == ["--preset", "table", "--data-dir", str(saved.path), "--target", "cultivar",
                    "--target", "alcohol (%)=regression"]
    assert train_form.check(argv) == make_config(preset, data=options).to_dict()  # the page trains what the CLI does

    other = {"config": {"data": options}}
    assert view.visible(other, "visitor:abc") and view.visible(other, "owner")
    assert not view.visible(other, "visitor:someone-else")  # another visitor's table is not listed
    assert view.visible({"config": {"data": {"source": "generated"}}}, "visitor:someone-else")
    with pytest.raises(UserError, match="^notes.csv: one column only"):
        view.save_upload(b"note\nhello\nworld\n", "notes.csv", "owner")


def test_a_table_model_works_on_predict_models_compare_and_trade_offs(wine, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from mtl_core.views import your_data as view

    monkeypatch.setenv("MTL_HOME", str(wine["root"] / "home"))
    monkeypatch.setenv("MTL_WEIGHTS", str(wine["root"] / "no-weights"))
    targets = {"cultivar": "auto", "alcohol (%)": "auto"}
    dataset = {"path": str(wine["path"]), "name": "wine.csv", "fingerprint": "0" * 64, "rows": 178,
               "preset": "table", "targets": targets, "options": view.data_options(wine["path"], targets)}
    for page in ("predict", "models", "compare", "tradeoffs", "train"):
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
        at.session_state["preset"] = "table"
        at.session_state["studio-dataset"] = dataset
        at.run()
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.error, (page, [e.value for e in [*at.exception, *at.error]])
        if page == "predict":
            assert [m.label for m in at.metric] == ["cultivar", "alcohol"]  # the row form, predicted at once
        if page == "train":
            assert [s.label for s in at.slider] == ["cultivar (multiclass)", "alcohol (regression)"]
