"""Predict: every head's answer for your input, side by side.

Image presets: upload files, pick a sample of the model's test split, or take a photo. Tabular presets:
one widget per feature (live prediction) or a CSV for a batch with a downloadable result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from mtl_core.control import datasets
from mtl_core.control.tasks import card_tasks
from mtl_core.views import common
from mtl_core.views import predict as predict_view
from pages import _access
from pages import _ui as ui

if TYPE_CHECKING:  # for the annotations only: the page imports no TensorFlow until a model is loaded
    from mtl_core.control.presets.base import Preset
    from mtl_core.control.store import StoredModel
    from mtl_core.control.tasks import TaskSpec
    from mtl_core.engine.inference import Predictor


@dataclass
class PageState:
    """What every part of the page works on: the preset, the chosen model, its predictor and context."""

    preset: Preset
    model: StoredModel
    predictor: Predictor
    context: predict_view.ModelContext
    tasks: list[TaskSpec]


def show_images(s: PageState, sources: list, names: list[str], key: str, truth: dict | None = None) -> None:
    with ui.guard("the prediction"):
        if all(isinstance(source, bytes) for source in sources):  # files from the user (not test samples)
            _access.check_upload(sources, names)
        items, seconds = predict_view.predict_images(s.predictor, sources, names)
        overlays = [None] * len(items)
        if st.session_state.get("predict-explain"):
            overlays = predict_view.explanation_overlays(s.predictor, items)
        for i, item in enumerate(items):
            ui.image_result(item, s.tasks, s.context, truth, key=f"{key}-{i}", overlays=overlays[i])
        ok = sum(item.error is None for item in items)
        ui.timing(seconds, f"{ok} of {len(items)} image{'s' if len(items) != 1 else ''} predicted", s.model.id)
        if key == "upload":  # the batch's results as files, as for a CSV batch
            files = predict_view.image_batch_files(s.tasks, items, s.preset.name, s.model.id)
            left, right = st.columns(2)
            left.download_button("Download the predictions (CSV)", files["csv"], width="stretch",
                                 file_name=f"{s.preset.name}-predictions.csv", mime="text/csv",
                                 icon=":material/download:", key=f"images-csv-{s.model.id}")
            right.download_button("Download the predictions (JSON)", files["json"], width="stretch",
                                  file_name=f"{s.preset.name}-predictions.json", mime="application/json",
                                  icon=":material/data_object:", key=f"images-json-{s.model.id}")


def image_page(s: PageState) -> None:
    st.toggle("Show where each head looks (Grad-CAM)", key="predict-explain",
              help="Over the image the model saw, per head: red where the evidence for its answer is, yellow where "
                   "most (Grad-CAM on the shared features). Two heads of one picture often look at different parts.")
    # The gallery (it reads the test split) and the camera (it asks for permission) run only once their
    # tab is opened (on_change="rerun"); the uploader always runs, so its files survive a tab switch.
    upload, samples, camera = st.tabs(["Upload images", "Samples from the test split", "Camera"],
                                      key="predict-tabs-image", on_change="rerun")
    with upload:
        files = st.file_uploader("Images (png, jpg, webp, bmp, gif: the first frame; any size and colour mode)",
                                 type=list(predict_view.IMAGE_TYPES), accept_multiple_files=True,
                                 key=f"upload-{s.preset.name}")
        if files:
            show_images(s, [f.getvalue() for f in files], [f.name for f in files], "upload")
        else:
            st.caption("Each file gets its own row: the picture as the model saw it, then one panel per head. "
                       "No file at hand? Pick a sample of the test split in the next tab.")
    if samples.open:
        with samples:
            sample_gallery(s)
    if camera.open:
        with camera:
            shot = st.camera_input("Take a photo (your browser asks for permission first)",
                                   key=f"camera-{s.preset.name}")
            if shot is not None:
                show_images(s, [shot.getvalue()], ["camera photo"], "camera")


def sample_gallery(s: PageState) -> None:
    seed_key = f"gallery-seed-{s.model.id}"
    seed = st.session_state.get(seed_key, 0)
    if not datasets.on_this_machine(s.preset, s.model.card["config"].get("data")):
        st.info("The samples come from this model's test split, whose data is not on this machine. Ways to get "
                "it:\n\n" + "\n".join(common.how_to_get_data(s.preset)))
        return
    with ui.guard("the sample gallery"):
        gallery = ui.gallery(s.model, 12, seed)
        chosen_key = f"gallery-pick-{s.model.id}"
        pick = st.session_state.get(chosen_key)
        # The picked sample's answer comes first, where the eye is (under the gallery it was below the fold,
        # and a click seemed to change nothing); the buttons set the pick before the page reruns.
        if pick is not None and pick < len(gallery):
            sample = gallery[pick]
            st.markdown(f"**Test sample #{sample.index}**")
            show_images(s, [sample.x], [f"test sample #{sample.index}"], "sample", truth=sample.labels)
            st.divider()
        st.caption("Examples of this model's own test split (it never trained on them), with their true labels. "
                   "Pick one to see what every head says.")
        columns = st.columns(6)
        for i, sample in enumerate(gallery):
            with columns[i % 6]:
                st.image(sample.image, width="stretch")
                st.button(f"#{sample.index}", key=f"pick-{s.model.id}-{i}", width="stretch",
                          help="Predict this sample", type="primary" if i == pick else "secondary",
                          on_click=st.session_state.__setitem__, args=(chosen_key, i))
                st.caption("  \n".join(f"{h}: {v}" for h, v in sample.labels.items()))
        if st.button("Other samples", key=f"reshuffle-{s.model.id}", icon=":material/shuffle:"):
            st.session_state[seed_key] = seed + 1
            st.session_state.pop(chosen_key, None)
            st.rerun()


def table_page(s: PageState) -> None:
    form, batch = st.tabs(["One row", "Batch (CSV)"])
    with form:
        row_form(s)
    with batch:
        csv_batch(s)


def row_form(s: PageState) -> None:
    st.caption("One widget per feature; defaults are the training mean (numbers) and the most frequent "
               "category. The prediction follows every change.")
    row = {}
    with st.container(border=True):
        columns = st.columns(3)
        for i, spec in enumerate(s.context.features):
            with columns[i % 3]:
                key = f"feature-{s.model.id}-{spec.name}"
                if spec.kind == "numeric":
                    row[spec.name] = st.number_input(spec.name, min_value=spec.low, max_value=spec.high,
                                                     value=spec.default, step=spec.step, key=key, help=spec.help)
                else:
                    row[spec.name] = st.selectbox(spec.name, spec.options, index=spec.options.index(spec.default)
                                                  if spec.default in spec.options else 0, key=key, help=spec.help)
    with ui.guard("the prediction"):
        result, seconds = predict_view.predict_row(s.predictor, row)
        if result.error:
            st.error(result.error)
            return
        for warning in result.warnings:
            st.warning(warning)
        ui.head_panels(s.tasks, result.outputs, s.context, key="row")
        with st.expander("What the model saw (encoded row)"):
            st.dataframe(predict_view.encoded_table(s.model.card, row, result.model_input), hide_index=True)
        ui.timing(seconds, "1 row predicted", s.model.id)


def csv_batch(s: PageState) -> None:
    feature_names = ", ".join(f.name for f in s.context.features)
    st.caption(f"A CSV with the columns {feature_names} (others are ignored). One result row per input row; "
               "a bad row gets its error in the `error` column and the others still get predictions.")
    if s.context.example_csv:
        st.download_button("Example CSV", s.context.example_csv, file_name=f"{s.preset.name}-example.csv",
                           mime="text/csv", icon=":material/download:", key=f"example-{s.model.id}")
    upload = st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key=f"csv-{s.preset.name}")
    if upload is None:
        return
    with ui.guard("the batch prediction"):
        _access.check_upload([upload.getvalue()], [upload.name])
        result = predict_view.predict_csv(s.predictor, upload.getvalue(), upload.name)
        if result.error:
            st.error(result.error)
            return
        n = len(result.items)
        st.markdown(f"**{n - result.failed} of {n} rows predicted**"
                    + (f", {result.failed} failed" if result.failed else "")
                    + (f", {result.warned} with warnings" if result.warned else ""))
        bad = [i for i in result.items if i.error]
        for item in bad[:10]:
            st.error(item.error)
        if len(bad) > 10:
            st.error(f"… and {len(bad) - 10} more rows failed: see the error column")
        warned = [i for i in result.items if i.warnings]
        for item in warned[:5]:
            st.warning(f"{item.input}: " + "; ".join(item.warnings))
        if len(warned) > 5:
            st.warning(f"… and {len(warned) - 5} more rows with warnings: see the warnings column")
        st.download_button("Download the predictions (CSV)", result.csv(),
                           file_name=f"{upload.name.rsplit('.', 1)[0]}-predictions.csv", mime="text/csv",
                           icon=":material/download:", type="primary", key=f"result-{s.model.id}")
        ui.table(result.table, column_order=result.display_order())  # a failed row's outputs blank, not None
        ui.timing(result.seconds, f"{n} rows", s.model.id)
        good = [i for i, item in enumerate(result.items) if item.outputs]
        if good:
            pick = st.selectbox("Every head for one row", good, key=f"inspect-{s.model.id}",
                                format_func=lambda i: result.items[i].input)
            ui.head_panels(s.tasks, result.items[pick].outputs, s.context, key="batch")


def main() -> None:
    ui.page_setup("predict")
    preset = ui.current_preset()
    st.title("Predict")
    caption = st.empty()
    model = ui.model_picker(preset, key=f"predict-model-{preset.name}")
    if model is None:
        st.stop()
    tasks = card_tasks(model.card)  # the model's own heads (a table's are its target columns)
    caption.caption(f"{preset.title} · `{preset.name}` · heads: " + ", ".join(f"{t.name} ({t.kind})" for t in tasks))

    predictor = context = None
    with ui.guard("loading the model"):
        predictor = ui.predictor_for(model)
        context = ui.context_for(model)
    if predictor is None:
        st.stop()
    tasks = predictor.tasks
    s = PageState(preset, model, predictor, context, tasks)

    with ui.guard("this page"):
        if predictor.input_kind == "image":
            image_page(s)
        else:
            table_page(s)


main()
