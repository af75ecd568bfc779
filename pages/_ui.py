"""Widgets and layout shared by the pages: the preset in session state, the error guard, cached model
loading, and the per-head output panels. Everything computed comes from ``mtl_core.views``.

Models are loaded once per process with ``st.cache_resource`` (keyed by model id and folder); data
and evaluations are cached with ``st.cache_data``. TensorFlow is imported only inside the cached
model loader, so pages that never call it (Home, Data) open without it.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from mtl_core.control.presets import all_presets, get_preset
from mtl_core.control.store import ModelStore, StoredModel
from mtl_core.errors import UserError
from mtl_core.views import charts, common, warmup
from mtl_core.views import predict as predict_view

log = logging.getLogger("mtl_studio")


# ----------------------------------------------------------------------------- state and errors

ENTRY_KEY = "studio-entry"  # set by app.py on every run, before the page runs
DEEP_LINK_KEY = "studio-deep-link"


def page_setup(page: str) -> None:
    """Make sure this page runs under app.py's navigation.

    Streamlit treats a folder named ``pages/`` beside the entry point as an old-style multipage app
    until the first ``st.navigation`` call of the process: if the very first request after a start is
    a deep link (``/predict``, e.g. a tab reconnecting after a restart), it runs the page script alone,
    without app.py (no preset picker), and keeps doing so for every session until app.py has run once.
    A page that finds app.py's marker missing remembers where the user wanted to go and switches to
    app.py, which calls ``st.navigation`` and switches back to the page.
    """
    if not st.session_state.get(ENTRY_KEY):
        st.session_state[DEEP_LINK_KEY] = f"pages/{page}.py"
        st.switch_page("app.py", query_params=st.query_params.to_dict())  # keeping what the link names


def current_preset():
    """The preset chosen in the sidebar (app.py keeps it in ``st.session_state["preset"]``)."""
    name = st.session_state.get("preset")
    names = [p.name for p in all_presets()]
    return get_preset(name if name in names else names[0])


DATASET_KEY = "studio-dataset"  # the session's own table (pages/your_data.py): path, name, fingerprint, options


def preset_with_data():
    """The sidebar's preset, ready to train: a table preset becomes the preset of this session's CSV (its
    heads are its target columns); without one, the page says where to bring it and stops."""
    preset = current_preset()
    if not preset.data_defined:
        return preset
    dataset = st.session_state.get(DATASET_KEY) or {}
    options = dataset.get("options") if dataset.get("preset") == preset.name else None
    if not options:
        what = "a zip of your images" if preset.input_kind == "image" else "a CSV"
        st.info(f"**{preset.name}** trains on your own data: upload {what} and choose its targets first.")
        st.page_link("pages/your_data.py", label="Your data", icon=":material/upload_file:")
        st.stop()
    return preset.for_data(options)


def dataset_flags() -> list[str]:
    """The `train` flags of this session's table (--data-dir, --target ...) when the sidebar's preset takes
    one, else none."""
    if not current_preset().data_defined:
        return []
    from mtl_core.views.your_data import train_flags

    return train_flags(st.session_state[DATASET_KEY]["options"])  # preset_with_data checked it is this preset's


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def guard(what: str = "this part of the page"):
    """Run a block; a UserError becomes ``st.error`` with its one-line reason, anything unexpected a
    one-line summary (the traceback goes to the server log, never to the page). The rest of the page
    still renders. Streamlit's own control flow (st.stop, st.rerun) is a BaseException and passes."""
    try:
        yield
    except UserError as exc:
        st.error(str(exc))
    except Exception as exc:  # noqa: BLE001 - the page must stay usable whatever happens
        log.error("unexpected error in %s:\n%s", what, traceback.format_exc())
        st.error(f"Unexpected error in {what}: {type(exc).__name__}: {one_line(exc)}")


# ----------------------------------------------------------------------------- cached resources


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def load_predictor(model_id: str, folder: str):
    """One Predictor per model (id + folder), shared by every session and rerun: the server's warm-up's when
    it readied this model (app.py starts it), else loaded and traced now."""
    warm = warmup.WARMUP.take((model_id, folder))
    if warm is not None:
        return warm
    return warmup.ready_predictor(StoredModel(model_id, Path(folder), _card(model_id, folder), "path"))


def predictor_for(model: StoredModel):
    key = (model.id, str(model.path))
    if warmup.WARMUP.running_for(key):  # a visitor before the warm-up's end: its stages, not a frozen page
        with st.status("Getting the model ready…", expanded=False) as box:
            while not warmup.WARMUP.wait(0.25):
                now = warmup.WARMUP.status()
                box.update(label=f"Getting the model ready: {now.stage} ({now.seconds:.0f} s; TensorFlow loads "
                                 "once per server)")
            box.update(label="The model is ready", state="complete")
    return load_predictor(*key)


def warm_up(presets: list) -> None:
    """Start the server's warm-up once (app.py, every run: only the first start does anything)."""
    warmup.start_for_first_visit(presets, ModelStore())


def _card(model_id: str, folder: str) -> dict:
    from mtl_core.control.store import read_card

    card = read_card(Path(folder))
    if card is None:
        raise UserError(f"{model_id}: its folder {folder} no longer holds a model")
    return card


@st.cache_data(show_spinner="Reading the training data…", max_entries=32)
def _model_context(preset_name: str, model_id: str, folder: str) -> predict_view.ModelContext:
    card = _card(model_id, folder)
    return predict_view.model_context(get_preset(preset_name).for_data(card["config"]["data"]), card)


@st.cache_data(show_spinner="Picking samples from the test split…", max_entries=32)
def _gallery(preset_name: str, model_id: str, folder: str, n: int, seed: int) -> list[common.Sample]:
    card = _card(model_id, folder)
    return predict_view.gallery(get_preset(preset_name).for_data(card["config"]["data"]), card, n=n, seed=seed)


def context_for(model: StoredModel) -> predict_view.ModelContext:
    """Training ranges, form widgets and an example CSV of a model (cached per model id)."""
    return _model_context(model.preset, model.id, str(model.path))


def gallery(model: StoredModel, n: int, seed: int) -> list[common.Sample]:
    return _gallery(model.preset, model.id, str(model.path), n, seed)


def table(frame, **kwargs) -> None:
    """A read-only table: missing values blank (not "None"), numbers to 4 decimals, long text columns wide.
    Streamlit draws a missing cell as "None" whatever a Styler says, so a number column with gaps becomes text."""
    import pandas as pd

    frame = frame.copy()
    config = kwargs.pop("column_config", {}) or {}
    numbers = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) and values.isna().any():
            frame[column] = [f"{v:,.4f}".rstrip("0").rstrip(".") if pd.notna(v) else "" for v in values]
        elif pd.api.types.is_float_dtype(values):
            numbers.append(column)
        elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):  # pandas 3: str dtype
            frame[column] = values.where(values.notna(), "")
            if column not in config and frame[column].astype(str).str.len().max() > 40:
                config[column] = st.column_config.TextColumn(column, width="large")
    styled = frame.style.format(precision=4, thousands=",", subset=numbers)
    st.dataframe(styled, hide_index=True, column_config=config, **kwargs)


def store() -> ModelStore:
    return ModelStore()


# ----------------------------------------------------------------------------- choosing a model


def no_model_message(preset) -> None:
    st.warning(f"No trained model for **{preset.name}** yet, so there is nothing to show (and no made-up "
               f"outputs). Train one: `{common.train_command(preset.name)}`; it appears here once it is in the "
               f"store ($MTL_HOME/models) or in weights/.")


CHOSEN_KEY = "studio-chosen-model"  # {preset: model id}: the model another page (Train, Trade-offs) opened
PICKER_ROUND = "studio-picker-round"  # {preset: n}: bumped by choose_model, part of the pickers' keys


def choose_model(preset_name: str, model_id: str) -> None:
    """Make ``model_id`` the model every page's picker shows for ``preset_name`` (e.g. after a training,
    or a point picked on the Trade-offs page)."""
    st.session_state.setdefault(CHOSEN_KEY, {})[preset_name] = model_id
    if current_preset().name == preset_name:
        st.query_params["model"] = model_id  # the URL names the view (see app.py)
    # New picker widgets (new keys), not the old ones with their state deleted: a select box recreated under
    # its old key kept showing its old option in the browser while the page used the chosen one.
    rounds = st.session_state.setdefault(PICKER_ROUND, {})
    rounds[preset_name] = rounds.get(preset_name, 0) + 1


def picker_key(key: str, preset_name: str) -> str:
    """The key a page's model picker has now (``key``, then ``key-1``, ... after each choose_model)."""
    n = st.session_state.get(PICKER_ROUND, {}).get(preset_name, 0)
    return key if n == 0 else f"{key}-{n}"


def shown_to_session(model: StoredModel) -> bool:
    """Whether this session may see ``model``: not one trained on another visitor's own table."""
    from mtl_core.views.your_data import visible
    from pages import _access

    return visible(model.card, _access.session_tag())


def model_picker(preset, key: str) -> StoredModel | None:
    """A select box of the preset's models, the default first (the one chosen on Models, else the shipped one,
    else the first trained), each entry with its test metrics and how it was trained. It shows the model this
    session opened (a training it ran, a point on Trade-offs, the URL), else the default. None, with the way to
    get one, when there is no model."""
    from mtl_core.views.models import picker_label

    models = [m for m in store().list(preset.name) if shown_to_session(m)]  # not another visitor's own data
    if not models:
        no_model_message(preset)
        return None
    found = store().default(preset.name)
    default = found.id if found is not None and any(m.id == found.id for m in models) else models[0].id
    models.sort(key=lambda m: m.id != default)  # stable: the default first, then newest stored, then shipped
    labels = {m.id: picker_label(m, default) for m in models}
    ids = [m.id for m in models]
    chosen_id = st.session_state.get(CHOSEN_KEY, {}).get(preset.name)
    shown = st.session_state.get(picker_key(key, preset.name), chosen_id if chosen_id in ids else ids[0])
    in_url = url_model(ids)
    if in_url not in (None, shown):  # a link, a reload or the back button names another model
        choose_model(preset.name, in_url)
        chosen_id = in_url
    index = ids.index(chosen_id) if chosen_id in ids else 0
    widget = picker_key(key, preset.name)
    chosen = st.selectbox("Model", ids, index=index, key=widget,
                          on_change=lambda: st.query_params.update(model=st.session_state[widget]),
                          format_func=labels.__getitem__,
                          help="★ the preset's default (chosen on the Models page, else the shipped model, else "
                               "the first trained), then the newest model in the store, then the shipped ones.")
    st.query_params["model"] = chosen
    return next(m for m in models if m.id == chosen)


def url_model(ids: list[str]) -> str | None:
    """The model the URL names (``?model=``), when it is one of ``ids``."""
    model_id = st.query_params.get("model")
    return model_id if model_id in ids else None


# ----------------------------------------------------------------------------- output panels


def _multiclass(task, out: dict, truth: str | None, key: str) -> None:
    items = common.top_probabilities(out["probabilities"])
    st.metric(task.name, out["label"], delta=f"{out['probability']:.1%}", delta_color="off", delta_arrow="off",
              help=task.description or None)
    if truth is not None:
        _truth(truth, truth == out["label"])
    n = len(out["probabilities"])
    shown = f"top {common.TOP_K} of {n} classes" if n > common.FOLD_ABOVE else f"{n} classes"
    st.plotly_chart(charts.probability_bars(items), config={"displayModeBar": False}, key=key)
    st.caption(f"multiclass · {shown}")


def _binary(task, out: dict, truth: str | None, key: str) -> None:
    p = out["probability"]
    shown = p if out["label"] == task.class_names[1] else 1 - p
    st.metric(task.name, out["label"], delta=f"{shown:.1%}", delta_color="off", delta_arrow="off",
              help=task.description or None)
    if truth is not None:
        _truth(truth, truth == out["label"])
    st.plotly_chart(charts.binary_bar(p, task.class_names), config={"displayModeBar": False}, key=key)
    st.caption(f"binary · P({task.class_names[1]}) = {p:.3f}, threshold 0.5")


def _regression(task, out: dict, truth: str | None, context: predict_view.ModelContext | None, key: str) -> None:
    st.metric(task.name, common.format_value(out["value"], out.get("unit", "")), help=task.description or None)
    if truth is not None:
        _truth(truth, None)
    rng = context.ranges.get(task.name) if context else None
    if rng:
        low, high, where = rng
        st.plotly_chart(charts.value_in_range(out["value"], low, high, task.unit), config={"displayModeBar": False},
                        key=key)
        st.caption(f"regression · range {common.format_range(low, high, task.unit)} ({where})")
    else:
        st.caption("regression")


def _truth(text: str, correct: bool | None) -> None:
    if text == common.MISSING:  # no label to be right or wrong against
        correct = None
    mark = "" if correct is None else " ✓" if correct else " ✗"
    colour = "gray" if correct is None else "green" if correct else "red"
    st.markdown(f":{colour}[true: {text}{mark}]")


def head_panels(tasks, outputs: dict, context: predict_view.ModelContext | None = None,
                truth: dict[str, str] | None = None, *, key: str, overlays: dict | None = None) -> None:
    """One bordered panel per head, side by side; ``overlays``: each head's explanation over the image."""
    columns = st.columns(len(tasks))
    for col, task in zip(columns, tasks, strict=True):
        with col.container(border=True):
            if overlays and task.name in overlays:
                st.image(common.to_display(overlays[task.name], 160), caption=f"where {task.name} looks",
                         width=160)
            if context is not None and task.name in context.stalled:
                st.warning(f"This head stopped learning at epoch {context.stalled[task.name]} of its training: it "
                           "gives the same answer for every input. Retrain with another seed.",
                           icon=":material/warning:")
            out = outputs[task.name]
            t = (truth or {}).get(task.name)
            k = f"{key}-{task.name}"
            if out["kind"] == "multiclass":
                _multiclass(task, out, t, k)
            elif out["kind"] == "binary":
                _binary(task, out, t, k)
            else:
                _regression(task, out, t, context, k)


def image_result(item: predict_view.ItemResult, tasks, context, truth: dict[str, str] | None = None, *,
                 key: str, overlays: dict | None = None) -> None:
    """One image's result: the error, or what the model saw beside one panel per head."""
    with st.container(border=True):
        if item.error:
            st.error(item.error)
            return
        for line in item.warnings:  # e.g. unlike the training data (engine/novelty.py)
            st.warning(line, icon=":material/warning:")
        # The answers first, the picture after: on a phone the columns stack, and the answers must not sit a
        # screen below a full-width picture. The picture keeps a small fixed width for the same reason.
        answers, picture = st.columns([max(len(tasks), 1) * 2, 1.3], vertical_alignment="top")
        with answers:
            head_panels(tasks, item.outputs, context, truth, key=key, overlays=overlays)
        with picture:
            h, w, c = item.model_input.shape
            st.image(common.to_display(item.model_input), caption=f"{item.input}", width=160)
            st.caption(f"as the model saw it: {w}×{h} {'grey' if c == 1 else 'RGB'}"
                       + (f" (from {item.original})" if item.original else ""))


def timing(seconds: float, what: str, model_id: str) -> None:
    st.caption(f"{what} in {seconds * 1000:.1f} ms (decoding, preprocessing and the model) · model `{model_id}`")


def conflict_panel(gradients: dict, epochs: list[int], *, key: str) -> None:
    """The gradient-conflict monitor's chart and its reading, one line per pair of heads."""
    from mtl_core.views import conflict

    st.plotly_chart(charts.gradient_conflict(gradients, epochs, title="Do the heads pull the shared backbone apart?"),
                    key=key)
    lines = conflict.summary(gradients)
    st.caption("Cosine of two heads' loss gradients on the backbone, measured each epoch on a fixed training "
               "batch: below 0, a step that helps one head hurts the other. " + " · ".join(lines))
