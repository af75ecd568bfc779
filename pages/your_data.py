"""Your data: upload a CSV (a table) or a zip of images (labels.csv, or one sub-folder per class), choose the
targets (one head each, kinds inferred and changeable), see the heads with their class balance or distribution,
then train on the Train page with its sliders. The upload is kept under this session's own folder; models
trained on it are listed only for this session (and the owner)."""

from pathlib import Path

import streamlit as st

from mtl_core.control.data.image_folder import SIZES, default_size
from mtl_core.errors import UserError
from mtl_core.views import charts
from mtl_core.views import your_data as view
from pages import _access
from pages import _ui as ui

DATASET_KEY = ui.DATASET_KEY


def heads_section(plan) -> None:
    st.subheader("Heads")
    cols = st.columns(min(len(plan.heads), 3))
    for i, head in enumerate(plan.heads):
        with cols[i % len(cols)].container(border=True):
            what = ", ".join(head.classes) if head.classes else (head.unit or "numbers")
            st.markdown(f"**{head.head}** · {head.kind} · {what}")
            if head.kind == "regression":
                st.plotly_chart(charts.histogram(head.values, name=head.head, unit=head.unit),
                                key=f"your-data-hist-{head.head}", config={"displayModeBar": False})
            else:
                st.plotly_chart(charts.label_counts(head.counts), key=f"your-data-counts-{head.head}",
                                config={"displayModeBar": False})
            if head.missing:
                st.caption(f"{head.missing:,} examples without this label: they train the other heads only")


def kind_pickers(chosen: list[str], inferred: dict[str, str]) -> dict[str, str]:
    kinds = {}
    columns = st.columns(min(len(chosen), 4))
    for i, column in enumerate(chosen):
        kinds[column] = columns[i % len(columns)].selectbox(
            f"kind of {column}", view.KIND_CHOICES, key=f"your-data-kind-{column}",
            format_func=lambda k, c=column: f"auto ({inferred.get(c) or '?'})" if k == "auto" else k)
    return kinds


def table_flow(dataset: dict) -> None:
    path = Path(dataset["path"])
    roles = view.column_roles(path)
    st.dataframe([{"column": r.column, "as a target": r.kind or "no", "classes or values": r.detail,
                   "distinct": r.distinct, "missing": r.missing} for r in roles], hide_index=True)
    candidates = [r.column for r in roles if r.kind]
    chosen = st.multiselect("Targets: the columns to predict (one head each)", candidates,
                            default=[c for c in dataset.get("targets", {}) if c in candidates],
                            key=f"your-data-targets-{dataset['fingerprint'][:12]}")
    if not chosen:
        st.info("Choose at least one target; two or more make a multi-task model.")
        st.stop()
    kinds = kind_pickers(chosen, {r.column: r.kind for r in roles})
    dataset["targets"] = kinds
    try:
        plan = view.plan(path, kinds)
    except UserError as exc:
        st.error(str(exc))
        st.stop()
    heads_section(plan)
    st.caption(f"Features ({len(plan.features)}): " + ", ".join(plan.features))
    for column, why in plan.excluded.items():
        st.caption(f"Left out: `{column}` ({why}).")
    for column, why in plan.flagged.items():
        st.warning(f"`{column}` {why} Leave it out (keep it only if it is known when predicting).")
    dataset["options"] = view.data_options(path, kinds)


def images_flow(dataset: dict) -> None:
    folder = Path(dataset["path"])
    everything, folder_plan = view.image_plan(folder, {})
    columns = [t.column for t in folder_plan.targets]
    st.caption(f"Layout: {folder_plan.layout} · {len(folder_plan.files):,} image files")
    if folder_plan.layout == "labels.csv":
        chosen = st.multiselect("Targets: the labels.csv columns to predict (one head each)", columns,
                                default=[c for c in dataset.get("targets", {}) if c in columns] or columns,
                                key=f"your-data-targets-{dataset['fingerprint'][:12]}")
        if not chosen:
            st.info("Choose at least one target.")
            st.stop()
        kinds = kind_pickers(chosen, {t.column: t.kind for t in folder_plan.targets})
    else:
        kinds = {"class": "auto"}
    size_default, channels = default_size(folder_plan.files)
    size = st.select_slider("Image size the model sees (pixels, square)", list(SIZES), value=size_default,
                            key=f"your-data-size-{dataset['fingerprint'][:12]}",
                            help="Every image is resized to this. Up to 64 px: a small CNN; from 96 px: MobileNetV2.")
    dataset["targets"] = kinds
    try:
        plan, folder_plan = view.image_plan(folder, kinds)
    except UserError as exc:
        st.error(str(exc))
        st.stop()
    st.image([str(p) for p in folder_plan.files[:8]], width=96,
             caption=[" · ".join(str(folder_plan.labels[t.column].iloc[i]) for t in folder_plan.targets)
                      for i in range(min(8, len(folder_plan.files)))])
    heads_section(plan)
    for file, why in list(folder_plan.skipped.items())[:10]:
        st.caption(f"Skipped `{file}`: {why}.")
    dataset["options"] = view.image_data_options(folder, kinds, size)
    st.caption(f"{'Greyscale' if channels == 1 else 'RGB'}; files that do not decode are listed when it trains "
               "and skipped, the rest trains.")


def main() -> None:
    ui.page_setup("your_data")
    st.title("Your data")
    st.caption(f"A CSV with a header row, or a zip of images (with a labels.csv naming each file and its targets, or "
               f"one sub-folder per class). Up to {view.MAX_MB} MB. Pick what to predict, one head each; kinds "
               "(binary, multiclass, regression) are read from the values. Missing feature values are filled from "
               "the training split, a missing label leaves only its own head out. Your upload stays in this "
               "session's folder on the server.")

    upload = st.file_uploader("CSV file or zip of images", type=["csv", "tsv", "txt", "zip"], key="your-data-upload")
    if upload is not None:
        with ui.guard("reading your file"):
            _access.check_upload([upload.getvalue()], [upload.name])
            is_zip = upload.name.lower().endswith(".zip")
            saver = view.save_zip if is_zip else view.save_upload
            saved = saver(upload.getvalue(), upload.name, _access.session_tag())
            current = st.session_state.get(DATASET_KEY) or {}
            if current.get("fingerprint") != saved.fingerprint:
                st.session_state[DATASET_KEY] = {"path": str(saved.path), "name": saved.name,
                                                 "fingerprint": saved.fingerprint, "rows": saved.rows,
                                                 "preset": "images" if is_zip else "table"}
    dataset = st.session_state.get(DATASET_KEY)
    if not dataset:
        st.info("No file yet. Any table works (one row per example, a column per feature and per target), and "
                "any folder of images zipped.")
        st.stop()

    what = "images" if dataset["preset"] == "images" else "rows"
    st.markdown(f"**{dataset['name']}** · {dataset['rows']:,} {what} · fingerprint `{dataset['fingerprint'][:12]}`")
    with ui.guard("your data"):
        (images_flow if dataset["preset"] == "images" else table_flow)(dataset)
        st.session_state[DATASET_KEY] = dataset
        if st.button("Train on it", type="primary", icon=":material/fitness_center:", key="your-data-train"):
            st.session_state["studio-next-preset"] = dataset["preset"]  # app.py sets the sidebar before drawing it
            st.switch_page("pages/train.py")


main()
