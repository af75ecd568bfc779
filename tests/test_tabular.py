"""Tables for churn-spend: reading a user's CSV, the encoder saved with a model, the CSV round trip
through training, saving and the Predictor, per-row errors and warnings, and bad training CSVs.

Two small trainings are shared by the module: one through the library (Trainer + ModelStore.save, so
the in-memory model can be compared with the saved one) and one through the CLI (`--data-dir`).
"""

from __future__ import annotations

import io
import json
import math
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.cli import main
from mtl_core.control.config import make_config
from mtl_core.control.data.customers import FEATURES, generate_customers, write_customers_csv
from mtl_core.control.data.splits import stratified_split
from mtl_core.control.data.tabular import TabularEncoder, read_csv
from mtl_core.control.presets import get_preset
from mtl_core.errors import UserError

PRESET = "churn-spend"
HEADS = ["churn", "spend"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]


def set_home(mp: pytest.MonkeyPatch, home: Path) -> Path:
    weights = home / "no-shipped-weights"
    weights.mkdir(parents=True, exist_ok=True)
    mp.setenv("MTL_HOME", str(home))
    mp.setenv("MTL_WEIGHTS", str(weights))
    return home


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def assert_user_error(rc: int, out: str, err: str, *needles: str) -> str:
    """Exit 2, nothing on stdout, exactly one line ``error: ...`` naming the problem."""
    assert rc == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def nothing_stored(home: Path) -> bool:
    models = home / "models"
    return not models.exists() or not any(models.iterdir())


def split_of(config, data):
    return stratified_split(data.y["churn"], len(data), val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction, seed=config.seed)


def outputs_of(item: dict) -> tuple[float, float]:
    return item["outputs"]["churn"]["probability"], item["outputs"]["spend"]["value"]


# ----------------------------------------------------------------------------- reading CSVs


def test_semicolon_and_tab_files_read_like_the_comma_file(tmp_path):
    frame = generate_customers(40, seed=3)
    comma = tmp_path / "comma.csv"
    frame.to_csv(comma, index=False)
    preset = get_preset(PRESET)
    expected = preset.load_data({"source": "csv", "dir": str(comma)})

    for sep, name in ((";", "semicolon.csv"), ("\t", "tabs.tsv")):
        path = tmp_path / name
        frame.to_csv(path, index=False, sep=sep)

        pd.testing.assert_frame_equal(read_csv(path), read_csv(comma))
        data = preset.load_data({"source": "csv", "dir": str(path)})
        assert list(data.x.columns) == list(FEATURES)
        assert data.fingerprint == expected.fingerprint  # the same rows and labels: the same model id


def test_excel_style_csv_with_bom_crlf_quotes_and_blank_lines(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffname,plan,spend\r\n"
                     "\"Doe, Jane\",\"two-year\",12.5\r\n"
                     "\r\n"
                     " Roe ,month-to-month , 7 \r\n".encode())

    frame = read_csv(path)

    assert list(frame.columns) == ["name", "plan", "spend"]  # no BOM in the first name
    assert frame.values.tolist() == [["Doe, Jane", "two-year", "12.5"], ["Roe", "month-to-month", "7"]]


def test_read_csv_takes_a_path_bytes_or_a_file_object(tmp_path):
    path = write_customers_csv(tmp_path / "c.csv", n=10, seed=1)
    raw = path.read_bytes()

    from_path = read_csv(path)

    pd.testing.assert_frame_equal(read_csv(raw), from_path)
    pd.testing.assert_frame_equal(read_csv(io.BytesIO(raw)), from_path)
    pd.testing.assert_frame_equal(read_csv(io.StringIO(raw.decode())), from_path)
    with pytest.raises(UserError, match="upload.csv: empty file"):
        read_csv(b"", name="upload.csv")


def test_a_file_of_only_empty_cells_is_a_user_error():
    with pytest.raises(UserError, match="sheet.csv"):
        read_csv(b",,,\r\n,,,\r\n", name="sheet.csv")


# ----------------------------------------------------------------------------- the encoder


def small_frame() -> pd.DataFrame:
    return pd.DataFrame({"age": ["20", "30", "40", "50"], "plan": ["b", "a", "b", "c"], "calls": ["1", "", "3", "5"]},
                        dtype=str)


def test_encoder_standardises_numbers_and_one_hot_encodes_categories():
    frame = small_frame()

    enc = TabularEncoder.fit(frame, ["age", "plan", "calls"])

    assert enc.numeric["age"] == pytest.approx((35.0, np.std([20, 30, 40, 50]) + 1e-6))
    assert enc.numeric["calls"][0] == pytest.approx(3.0)  # an empty cell is left out of the statistics
    assert enc.categorical == {"plan": ["a", "b", "c"]}
    # "calls" had a missing cell in training: it gets a missing-indicator input beside it
    assert enc.feature_names == ["age", "plan=a", "plan=b", "plan=c", "calls", "calls missing"] and enc.width == 6
    x, warnings = enc.encode_row({"age": "35", "plan": "c", "calls": "3"}, "row")
    assert warnings == []
    np.testing.assert_allclose(x, [0.0, 0, 0, 1, 0.0, 0.0], atol=1e-6)


def test_missing_values_are_imputed_from_the_training_split_with_a_warning():
    enc = TabularEncoder.fit(small_frame(), ["age", "plan", "calls"])
    assert enc.impute == {"age": 35.0, "plan": "b", "calls": 3.0}  # medians, the most frequent category

    x, warnings = enc.encode_row({"age": "NA", "plan": "", "calls": "?"}, "row 4")  # "NA" is missing in numbers only

    mean, std = enc.numeric["calls"]
    np.testing.assert_allclose(x, [0.0, 0, 1, 0, (3.0 - mean) / std, 1.0], atol=1e-6)  # the indicator says so
    assert warnings == ["column 'age': missing, imputed with the training median 35.0",
                        "column 'plan': missing, imputed with the training most frequent value 'b'",
                        "column 'calls': missing, imputed with the training median 3.0"]
    assert enc.missing_counts(small_frame()) == {"calls": 1}


def test_an_encoder_saved_before_imputation_still_refuses_a_missing_number():
    saved = TabularEncoder.fit(small_frame(), ["age", "plan"]).to_dict()
    old = TabularEncoder.from_dict({k: saved[k] for k in ("numeric", "categorical", "order")})  # a shipped card's
    assert old.impute is None and old.width == 4
    with pytest.raises(UserError, match=r"row 3, column 'age': missing or infinite value"):
        old.encode_row({"age": "", "plan": "a"}, "row 3")


def test_encoder_round_trips_through_json_and_encodes_identically(tmp_path):
    frame = generate_customers(200, seed=9)[list(FEATURES)]
    enc = TabularEncoder.fit(frame.iloc[:150], list(FEATURES))

    again = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))

    assert again == enc
    np.testing.assert_array_equal(again.encode_frame(frame), enc.encode_frame(frame))
    assert again.encode_frame(frame).shape == (200, enc.width)


def test_unseen_category_encodes_as_all_zeros_with_a_warning_naming_the_column():
    enc = TabularEncoder.fit(small_frame(), ["age", "plan", "calls"])

    x, warnings = enc.encode_row({"age": "35", "plan": "z", "calls": "3"}, "line 9")

    np.testing.assert_array_equal(x[1:4], [0, 0, 0])
    assert len(warnings) == 1 and "'plan'" in warnings[0] and "'z'" in warnings[0]


def test_a_number_outside_the_training_range_predicts_with_a_warning_naming_column_and_range():
    enc = TabularEncoder.fit(small_frame(), ["age", "plan", "calls"])
    assert enc.ranges == {"age": (20.0, 50.0), "calls": (1.0, 5.0)}  # from the training rows, missing cells left out

    _, inside = enc.encode_row({"age": "50", "plan": "a", "calls": "1"}, "row 2")  # the ends are inside
    x, outside = enc.encode_row({"age": "80", "plan": "a", "calls": "3"}, "row 3")

    assert inside == []
    assert outside == ["column 'age': 80 is outside the training range 20 to 50 (the model was never shown such a "
                       "value: treat this answer with care)"]
    assert x[0] == pytest.approx((80 - enc.numeric["age"][0]) / enc.numeric["age"][1])  # still predicted
    _, imputed = enc.encode_row({"age": "", "plan": "a", "calls": "3"}, "row 4")
    assert not any("outside" in w for w in imputed)  # an imputed median is never out of range
    assert TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict()))).ranges == enc.ranges
    old = {k: v for k, v in enc.to_dict().items() if k != "ranges"}  # a card written before ranges were kept
    assert TabularEncoder.from_dict(old).encode_row({"age": "80", "plan": "a", "calls": "3"}, "row 3")[1] == []


@pytest.mark.parametrize("value, needle", [("many", "'many' is not a number"), ("inf", "infinite"),
                                           ("-inf", "infinite")])
def test_bad_numeric_cell_names_the_row_and_column(value, needle):
    enc = TabularEncoder.fit(small_frame(), ["age", "plan", "calls"])

    with pytest.raises(UserError) as exc:
        enc.encode_row({"age": value, "plan": "a", "calls": "3"}, "rows.csv: line 7")

    assert "rows.csv: line 7" in str(exc.value) and "'age'" in str(exc.value) and needle in str(exc.value)


def test_text_in_a_numeric_feature_column_is_a_user_error_naming_row_and_column(tmp_path):
    frame = generate_customers(60, seed=2)
    frame.loc[2, "tenure_months"] = "ten"
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    preset = get_preset(PRESET)
    config = make_config(preset, data={"source": "csv", "dir": str(path)}, epochs=1)
    from mtl_core.engine.training import Trainer

    try:
        data = preset.load_data(config.data)
        _, spec, _, _, prep = Trainer(preset, config)._inputs(data, split_of(config, data))
    except UserError as exc:
        message = str(exc)
    else:
        message = f"no error; encoded as {sorted(prep['tabular']['categorical'])} categorical, width {spec.input_shape}"
    assert "'tenure_months'" in message and "line 4" in message, message


# ----------------------------------------------------------------------------- round trip through save and load


@pytest.fixture(scope="module")
def lib_model(tmp_path_factory):
    """A model trained on customers.csv (source "csv"), kept in memory and saved in a private store."""
    from mtl_core.control.datasets import load_training_data
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.training import Trainer

    root = tmp_path_factory.mktemp("tabular-lib")
    path = write_customers_csv(root / "customers.csv", n=300, seed=11)
    preset = get_preset(PRESET)
    config = make_config(preset, data={"source": "csv", "dir": str(path)}, epochs=2, batch_size=32, seed=0)
    data = load_training_data(preset, config)
    result = Trainer(preset, config).run(data)
    store = ModelStore(root=root / "models", shipped=None)
    model_id = config.model_id(data.fingerprint)
    store.save(model_id, result.model, result.card)
    return {"path": path, "config": config, "data": data, "result": result, "store": store, "id": model_id}


@pytest.fixture(scope="module")
def predictor(lib_model):
    from mtl_core.engine.inference import Predictor

    return Predictor(lib_model["store"].find(lib_model["id"]))


def in_memory(lib_model, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The trained model's outputs, calibrated by its card's temperatures (as the Predictor serves them)."""
    from mtl_core.engine.batches import predict_in_batches
    from mtl_core.engine.calibration import apply_temperature, temperatures

    card = lib_model["result"].card
    encoder = TabularEncoder.from_dict(card["preprocessing"]["tabular"])
    out = predict_in_batches(lib_model["result"].model, encoder.encode_frame(frame))
    scale = temperatures(card)
    return {head: apply_temperature(v, scale[head]) if head in scale else v for head, v in out.items()}


def test_saved_model_predicts_every_csv_row_like_the_in_memory_model(lib_model, predictor):
    frame = read_csv(lib_model["path"])
    want = in_memory(lib_model, frame)

    items = predictor.predict([lib_model["path"]]).to_dict()["predictions"]

    assert [item["input"] for item in items] == [f"customers.csv: line {i + 2}" for i in range(300)]
    assert not any("error" in item for item in items)
    warned = [w for item in items for w in item.get("warnings", [])]
    # rows like the training data: only the novelty check's own false alarms (its threshold is the 99th percentile),
    # and a validation or test row a little past the training split's extremes
    assert all("unlike" in w or "outside the training range" in w for w in warned) and len(warned) <= 0.05 * len(items)
    churn = np.array([item["outputs"]["churn"]["probability"] for item in items])
    spend = np.array([item["outputs"]["spend"]["value"] for item in items])
    np.testing.assert_allclose(churn, want["churn"], atol=2e-6)
    np.testing.assert_allclose(spend, want["spend"], rtol=1e-5, atol=1e-4)
    assert items[0]["outputs"]["spend"]["unit"] == "USD"
    assert {item["outputs"]["churn"]["label"] for item in items} <= {"stays", "churns"}
    assert all(item["outputs"]["churn"]["label"] == ("churns" if p >= 0.5 else "stays")
               for item, p in zip(items, churn, strict=True))


def test_saved_model_gives_the_same_outputs_as_predicting_the_encoded_arrays(lib_model, predictor):
    frame = read_csv(lib_model["path"]).head(50)
    encoded = TabularEncoder.from_dict(predictor.card["preprocessing"]["tabular"]).encode_frame(frame)
    want = in_memory(lib_model, frame)

    got = predictor.predict_arrays(encoded)

    np.testing.assert_allclose(got["churn"], want["churn"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["spend"], want["spend"], rtol=1e-6)
    # and the spend head answers in USD, on the scale of the labels it was trained on
    labels = np.array([float(v) for v in frame["spend"]])
    assert 0.2 * labels.mean() < got["spend"].mean() < 5 * labels.mean()


def test_the_card_carries_the_encoder_fitted_on_the_training_rows_only(lib_model):
    data, config = lib_model["data"], lib_model["config"]
    card = lib_model["store"].find(lib_model["id"]).card  # read back from card.json
    split = split_of(config, data)
    train = data.x.iloc[split.train]

    encoder = TabularEncoder.from_dict(card["preprocessing"]["tabular"])

    assert card["preprocessing"] == lib_model["result"].card["preprocessing"]
    assert encoder.order == list(FEATURES)
    assert sorted(encoder.numeric) == ["monthly_charges", "support_calls", "tenure_months"]
    for col, (mean, std) in encoder.numeric.items():
        values = train[col].astype(float).to_numpy()
        everything = data.x[col].astype(float).to_numpy()
        assert mean == pytest.approx(values.mean(), rel=1e-9)
        assert std == pytest.approx(values.std() + 1e-6, rel=1e-9)
        assert abs(mean - everything.mean()) > 1e-9  # not the statistics of all rows (validation and test leak)
    assert encoder.categorical["contract"] == CONTRACTS
    assert card["input"]["shape"] == [encoder.width]


def test_a_row_given_as_a_dict_or_the_csv_as_bytes_predicts_the_same(lib_model, predictor):
    path = lib_model["path"]
    first = read_csv(path).iloc[0].to_dict()

    from_file = predictor.predict([path]).items[0]
    from_bytes = predictor.predict([path.read_bytes()], names=["upload.csv"]).items[0]
    from_dict = predictor.predict([first]).items[0]

    assert from_bytes["input"] == "upload.csv: line 2" and from_dict["input"] == "<row>"
    assert outputs_of(from_bytes) == outputs_of(from_file)
    assert outputs_of(from_dict) == pytest.approx(outputs_of(from_file), rel=1e-6)


def write_rows(path: Path, frame: pd.DataFrame, edits: dict[tuple[int, str], str]) -> Path:
    frame = frame.copy()
    for (row, col), value in edits.items():
        frame.loc[row, col] = value
    frame.to_csv(path, index=False)
    return path


def test_an_unseen_category_predicts_with_a_warning_naming_the_column(lib_model, predictor, tmp_path):
    frame = read_csv(lib_model["path"]).head(3)[list(FEATURES)]
    path = write_rows(tmp_path / "new.csv", frame, {(1, "contract"): "three-year"})

    items = predictor.predict([path]).to_dict()["predictions"]

    assert [("outputs" in item, "error" in item) for item in items] == [(True, False)] * 3
    assert "warnings" not in items[0] and "warnings" not in items[2]
    warning, *others = items[1]["warnings"]
    assert "'contract'" in warning and "three-year" in warning
    assert all("unlike" in w for w in others)  # an encoding never seen in training may also be unlike it
    want = in_memory(lib_model, read_csv(path))  # the unknown contract encoded as none of the known ones
    assert outputs_of(items[1]) == pytest.approx((want["churn"][1], want["spend"][1]), rel=1e-5)


BAD_ROWS = {(1, "tenure_months"): "ten", (2, "monthly_charges"): "12 USD", (3, "support_calls"): "inf"}


def test_bad_rows_get_their_own_error_and_the_other_rows_their_predictions(lib_model, predictor, tmp_path):
    frame = read_csv(lib_model["path"]).head(5)
    path = write_rows(tmp_path / "rows.csv", frame, BAD_ROWS)
    clean = predictor.predict([lib_model["path"]]).items[:5]

    prediction = predictor.predict([path])

    items = prediction.to_dict()["predictions"]
    assert prediction.failed == 3 and len(items) == 5
    assert [item["input"] for item in items] == [f"rows.csv: line {i}" for i in range(2, 7)]
    for i in (0, 4):
        assert "error" not in items[i] and outputs_of(items[i]) == outputs_of(clean[i])
    for row, col in BAD_ROWS:
        error = items[row]["error"]
        assert "outputs" not in items[row]
        assert f"rows.csv: line {row + 2}" in error and f"'{col}'" in error and "\n" not in error
    assert "'ten' is not a number" in items[1]["error"]
    assert "infinite" in items[3]["error"] and "'12 USD' is not a number" in items[2]["error"]


def test_an_unreadable_csv_is_one_error_item_and_other_inputs_still_predict(lib_model, predictor, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("tenure_months,contract\n5,caf\xe9\n".encode("latin-1"))
    good = write_rows(tmp_path / "good.csv", read_csv(lib_model["path"]).head(2), {})

    items = predictor.predict([latin, good]).to_dict()["predictions"]

    assert len(items) == 3
    assert items[0]["input"] == "latin.csv" and "not UTF-8" in items[0]["error"]
    assert [list(item["outputs"]) for item in items[1:]] == [HEADS, HEADS]


def test_a_row_without_a_feature_column_is_an_error_naming_it(predictor):
    row = {"tenure_months": "5", "contract": "one-year", "payment_method": "credit card", "internet": "dsl",
           "monthly_charges": "50"}

    [item] = predictor.predict([row]).to_dict()["predictions"]

    assert "'support_calls'" in item["error"] and "missing" in item["error"]


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    """`train --preset churn-spend --data-dir customers.csv --data-option churn=churn,spend=spend --json`."""
    root = tmp_path_factory.mktemp("tabular-cli")
    path = write_customers_csv(root / "customers.csv", n=200, seed=21)
    args = ["train", "--preset", PRESET, "--data-dir", str(path), "--data-option", "churn=churn,spend=spend",
            "--epochs", "2", "--batch-size", "32", "--json"]
    with pytest.MonkeyPatch.context() as mp:
        home = set_home(mp, root / "home")
        rc, out, err = run_main(args)
    assert rc == 0, err
    return {"root": root, "home": home, "path": path, "args": args, "doc": json.loads(out), "stderr": err}


def test_cli_trains_on_a_users_csv(cli_model):
    from mtl_core.control.store import ModelStore

    doc = cli_model["doc"]

    assert doc["model"].startswith(f"{PRESET}-") and doc["cached"] is False
    assert set(doc["metrics"]) == set(HEADS)
    assert set(doc["metrics"]["churn"]) >= {"accuracy", "auc"} and doc["metrics"]["spend"]["mae"] > 0
    card = ModelStore(root=cli_model["home"] / "models", shipped=None).find(doc["model"]).card
    assert card["config"]["data"]["source"] == "csv"
    assert card["config"]["data"]["dir"] == str(cli_model["path"])
    assert "customers.csv" in card["data"]["source"] and sum(card["data"]["sizes"].values()) == 200
    assert TabularEncoder.from_dict(card["preprocessing"]["tabular"]).order == list(FEATURES)


def test_cli_semicolon_copy_of_the_csv_is_the_same_data_and_model(cli_model, monkeypatch):
    semicolon = cli_model["root"] / "customers-semicolon.csv"
    read_csv(cli_model["path"]).to_csv(semicolon, index=False, sep=";")
    set_home(monkeypatch, cli_model["home"])
    args = list(cli_model["args"])
    args[args.index("--data-dir") + 1] = str(semicolon)

    rc, out, err = run_main(args)

    assert rc == 0, err
    doc = json.loads(out)
    assert doc["model"] == cli_model["doc"]["model"] and doc["cached"] is True


def test_cli_data_option_names_the_label_columns_of_a_data_dir_csv(tmp_path, monkeypatch):
    path = tmp_path / "renamed.csv"
    generate_customers(80, seed=5).rename(columns={"churn": "left", "spend": "revenue"}).to_csv(path, index=False)
    set_home(monkeypatch, tmp_path / "home")

    rc, out, err = run_main(["train", "--preset", PRESET, "--data-dir", str(path), "--data-option",
                             "churn=left,spend=revenue", "--epochs", "1", "--batch-size", "32", "--json"])

    assert rc == 0, err
    assert json.loads(out)["model"].startswith(f"{PRESET}-")


def test_cli_predict_a_csv_with_a_bad_row_exits_2_and_prints_the_good_rows(cli_model, monkeypatch, tmp_path):
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.inference import Predictor

    set_home(monkeypatch, cli_model["home"])
    frame = read_csv(cli_model["path"]).head(4)[list(FEATURES)]
    rows = write_rows(tmp_path / "rows.csv", frame, {(2, "monthly_charges"): "12 USD"})

    rc, out, err = run_main(["predict", "--preset", PRESET, str(rows), "--json"])

    assert rc == 2
    assert out.count("\n") == 1
    doc = json.loads(out)
    assert doc["model"] == cli_model["doc"]["model"]
    items = doc["predictions"]
    assert [item["input"] for item in items] == [f"rows.csv: line {i}" for i in range(2, 6)]
    assert "'monthly_charges'" in items[2]["error"] and "'12 USD'" in items[2]["error"] and "outputs" not in items[2]
    assert err.splitlines() == [f"error: {items[2]['error']}"]
    store = ModelStore(root=cli_model["home"] / "models", shipped=None)
    want = Predictor(store.find(doc["model"])).predict([cli_model["path"]]).items[:4]
    for i in (0, 1, 3):
        assert list(items[i]["outputs"]) == HEADS
        assert outputs_of(items[i]) == pytest.approx(outputs_of(want[i]), rel=1e-6)


def test_cli_predict_a_clean_csv_exits_0_with_one_prediction_per_row(cli_model, monkeypatch, tmp_path):
    set_home(monkeypatch, cli_model["home"])
    rows = write_rows(tmp_path / "rows.csv", read_csv(cli_model["path"]).head(3), {})

    rc, out, err = run_main(["predict", "--preset", PRESET, "--model", cli_model["doc"]["model"], str(rows)])

    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("rows.csv: line 2: churn ") and "USD" in lines[0]


# ----------------------------------------------------------------------------- bad training CSVs


def _rows(frame: pd.DataFrame, edits: dict[tuple[int, str], str]) -> bytes:
    frame = frame.copy()
    for (row, col), value in edits.items():
        frame.loc[row, col] = value
    return frame.to_csv(index=False).encode()


def _bad_training_files() -> dict[str, tuple[bytes, list[str]]]:
    frame = generate_customers(40, seed=8)
    good = frame.to_csv(index=False)
    header, *body = good.splitlines()
    return {
        "empty file": (b"", ["bad.csv", "empty file"]),
        "whitespace only": (b"\n  \n", ["bad.csv", "empty file"]),
        "header only": ((header + "\n").encode(), ["bad.csv", "header only"]),
        "no spend column": (frame.drop(columns="spend").to_csv(index=False).encode(),
                            ["no column 'spend'", "head 'spend'"]),
        "text in spend": (_rows(frame, {(4, "spend"): "a lot"}), ["line 6", "'spend'", "'a lot' is not a number"]),
        "inf in spend": (_rows(frame, {(4, "spend"): "inf"}), ["line 6", "'spend'", "infinite"]),
        "churn with one class": (_rows(frame, {(i, "churn"): "0" for i in range(40)}), ["'churn'", "one class"]),
        "churn not a label": (_rows(frame, {(7, "churn"): "maybe"}), ["line 9", "'churn'", "'maybe'"]),
        "one row": ("\n".join([header, body[0]]).encode() + b"\n", ["bad.csv", "1 data rows"]),
        "duplicated headers": (good.replace("internet", "contract", 1).encode(), ["'contract'", "twice"]),
        "empty column name": (good.replace("internet", "", 1).encode(), ["empty name"]),
        "not UTF-8": (good.replace("fiber", "fibr\xe9").encode("latin-1"), ["bad.csv", "not UTF-8"]),
        "wrong number of fields": ("\n".join([header, *body[:4], body[4] + ",extra", *body[5:]]).encode(),
                                   ["line 6", "9 fields", "header has 8"]),
        "inf in a numeric feature": (_rows(frame, {(3, "monthly_charges"): "inf"}), ["line 5", "'monthly_charges'"]),
    }


BAD_TRAINING = list(_bad_training_files())


@pytest.mark.parametrize("case", BAD_TRAINING)
def test_bad_training_csv_is_one_line_error_and_stores_nothing(case, tmp_path, monkeypatch):
    content, needles = _bad_training_files()[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    home = set_home(monkeypatch, tmp_path / "home")

    rc, out, err = run_main(["train", "--preset", PRESET, "--data-dir", str(path), "--epochs", "1", "--json"])

    assert_user_error(rc, out, err, *needles)
    assert nothing_stored(home)


def test_missing_data_dir_file_is_one_line_error_and_stores_nothing(tmp_path, monkeypatch):
    home = set_home(monkeypatch, tmp_path / "home")
    missing = tmp_path / "nope.csv"

    rc, out, err = run_main(["train", "--preset", PRESET, "--data-dir", str(missing), "--json"])

    assert_user_error(rc, out, err, "--data-dir", str(missing))
    assert nothing_stored(home)


@pytest.mark.parametrize("option", ["churn", "spend"])
def test_a_named_label_column_that_is_missing_is_named(option, tmp_path):
    path = write_customers_csv(tmp_path / "customers.csv", n=30, seed=1)

    with pytest.raises(UserError) as exc:
        get_preset(PRESET).load_data({"source": "csv", "dir": str(path), option: "left"})

    message = str(exc.value)
    assert message.startswith("customers.csv: ") and f"no column 'left' for head '{option}'" in message
    assert "tenure_months" in message  # the columns there are, to pick from


def test_feature_columns_can_be_chosen_and_a_missing_one_is_named(tmp_path):
    path = write_customers_csv(tmp_path / "customers.csv", n=30, seed=1)
    preset = get_preset(PRESET)

    data = preset.load_data({"source": "csv", "dir": str(path), "features": "contract+tenure_months"})

    assert list(data.x.columns) == ["contract", "tenure_months"]
    with pytest.raises(UserError, match="no feature column 'age'"):
        preset.load_data({"source": "csv", "dir": str(path), "features": "contract+age"})


def test_with_limit_a_bad_cell_is_reported_at_its_own_csv_row(tmp_path, monkeypatch):
    frame = generate_customers(60, seed=1)
    frame.loc[40:, "tenure_months"] = "inf"  # CSV rows 42..61
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    home = set_home(monkeypatch, tmp_path / "home")

    rc, out, err = run_main(["train", "--preset", PRESET, "--data-dir", str(path), "--limit", "20", "--epochs", "1"])

    line = assert_user_error(rc, out, err, "'tenure_months'")
    assert nothing_stored(home)
    row = int(re.search(r"line (\d+)", line).group(1))
    assert 42 <= row <= 61, line


def test_nan_in_a_label_column_is_a_missing_label_not_an_error(tmp_path):
    frame = generate_customers(40, seed=8)
    frame.loc[3, "spend"] = "NaN"
    frame.loc[5, "churn"] = ""
    path = tmp_path / "partial.csv"
    frame.to_csv(path, index=False)

    data = get_preset(PRESET).load_data({"source": "csv", "dir": str(path)})

    assert math.isnan(data.y["spend"][3]) and np.isfinite(np.delete(data.y["spend"], 3)).all()
    assert data.y["churn"][5] == -1 and (np.delete(data.y["churn"], 5) >= 0).all()


def test_a_ragged_row_gets_its_own_error_and_the_other_rows_still_predict(tmp_path):
    """A CSV row with too few or too many fields fails alone in a batch prediction (shipped model)."""
    from mtl_core.control.store import SHIPPED_DIR, ModelStore
    from mtl_core.engine.inference import Predictor

    store = ModelStore(root=tmp_path / "models", shipped=SHIPPED_DIR)
    predictor = Predictor.for_preset("churn-spend", store=store)
    header = "tenure_months,contract,payment_method,internet,monthly_charges,support_calls"
    good = "12,month-to-month,electronic check,fiber,90.5,2"
    text = "\n".join([header, good, "12,month-to-month,fiber", good + ",extra", good]) + "\n"

    items = predictor.predict([text.encode()], names=["ragged.csv"]).items

    assert [i["input"] for i in items] == [f"ragged.csv: line {n}" for n in (2, 3, 4, 5)]
    assert "outputs" in items[0] and "outputs" in items[3]
    for bad, fields in ((items[1], 3), (items[2], 7)):
        assert bad["error"] == f"ragged.csv: line {bad['input'][-1]} has {fields} fields, the header has 6"
        assert "outputs" not in bad
    assert items[0]["outputs"] == items[3]["outputs"]


def test_rows_are_named_by_the_file_line_an_editor_shows(tmp_path):
    """Blank lines and a quoted cell over two lines do not shift the numbers: each row's input and each
    error name the line the row starts on (the header is line 1), as the user's editor numbers them."""
    from mtl_core.control.store import SHIPPED_DIR, ModelStore
    from mtl_core.engine.inference import Predictor

    predictor = Predictor.for_preset("churn-spend", store=ModelStore(root=tmp_path / "models", shipped=SHIPPED_DIR))
    lines = ["tenure_months,contract,payment_method,internet,monthly_charges,support_calls",  # line 1
             "12,month-to-month,electronic check,fiber,90.5,2",  # 2
             "",  # 3: blank
             '24,"one year",electronic check,dsl,"70',  # 4: a quoted cell that goes on to line 5
             '",1',  # 5
             "",  # 6: blank
             "twelve,month-to-month,electronic check,fiber,90.5,2"]  # 7: bad
    items = predictor.predict(["\n".join(lines).encode() + b"\n"], names=["gaps.csv"]).items

    assert [i["input"] for i in items] == ["gaps.csv: line 2", "gaps.csv: line 4", "gaps.csv: line 7"]
    assert items[2]["error"].startswith("gaps.csv: line 7, column 'tenure_months': 'twelve'")
    assert "outputs" in items[0]
