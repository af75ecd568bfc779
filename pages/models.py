"""Models: every model (shipped and stored) with its card: metrics beside the seed's reference and the
single-task baselines, training curves, confusion matrices, ROC and predicted-against-actual plots, and a
grid of test samples coloured by correctness. Download a model; delete a stored one."""

import functools

import streamlit as st

from mtl_core.control import datasets
from mtl_core.control.presets import all_presets, get_preset
from mtl_core.control.tasks import card_tasks
from mtl_core.views import charts, common
from mtl_core.views import models as models_view
from pages import _access, _hub
from pages import _ui as ui


@st.cache_data(show_spinner="Predicting the test split…", max_entries=16)
def evaluation(preset_name: str, model_id: str, folder: str) -> models_view.Evaluation:
    predictor = ui.load_predictor(model_id, folder)
    return models_view.evaluate_on_test(predictor, get_preset(preset_name).for_data(predictor.card["config"]["data"]))


def colour(correct) -> str:
    return "" if correct is None else "background-color: #dcfce7" if correct else "background-color: #fee2e2"


def default_button(store, model) -> None:
    """"Make default" for the owner, or why this model is (not) the default."""
    current = store.default(model.preset)
    if current is not None and current.id == model.id:
        st.caption(f"★ The default of {model.preset}: {store.default_reason(model.preset, current)}.")
    elif not _access.allowed("make-default"):
        st.caption("Only the owner of this app can change the default model.")
    elif st.button("Make default", key=f"make-default-{model.id}", icon=":material/star:",
                   help=f"Every page and command opens this model first for {model.preset}, for everyone, "
                        f"instead of {current.id if current else 'none'}."):
        with ui.guard("making the model the default"):
            _access.require("make-default")
            store.set_default(model.id)
            st.session_state["models-flash"] = f"{model.id} is now the default of {model.preset}."
            st.rerun()


def main() -> None:
    ui.page_setup("models")

    preset = ui.current_preset()
    store = ui.store()
    st.title("Models")

    flash = st.session_state.pop("models-flash", None)
    if flash:
        st.success(flash)

    with ui.guard("the list of models"):
        table = models_view.model_rows(store, all_presets(), shown=ui.shown_to_session)
        if len(table):
            st.caption("Every model on this machine: the store ($MTL_HOME/models) and the shipped ones (weights/). "
                       "★ marks each preset's default, the model every page opens first: the one chosen with "
                       "\"Make default\", else the shipped one, else the first trained. A training never "
                       "changes it by itself.")
            ui.table(table)

    st.subheader(f"Models of `{preset.name}`")
    _hub.pull_section(preset)  # before the picker: a preset with no model yet can get one here
    model = ui.model_picker(preset, key=f"models-model-{preset.name}")
    if model is None:
        st.stop()

    card = model.card
    tasks = card_tasks(card)

    with ui.guard("the model card"):
        training = card.get("training", {})
        device = training.get("device", {})
        config = card.get("config", {})
        st.markdown(f"#### `{model.id}`")
        st.caption(
            f"{model.source} model in `{model.path}` · created {card.get('created', '?')} · "
            f"{card.get('model_bytes', 0) / 1e6:.2f} MB  \n"
            f"data: {card.get('data', {}).get('source', '?')} · split "
            + " / ".join(f"{k} {v:,}" for k, v in card.get("data", {}).get("sizes", {}).items())
            + f"  \ntrained on {device.get('kind', '?')} ({device.get('name', '?')}), "
            f"{training.get('precision', '?')}, "
            f"{training.get('epochs_run', '?')} epochs in {training.get('seconds', '?')} s · loss weights "
            + ", ".join(f"{k}={v:g}" for k, v in config.get("loss_weights", {}).items())
            + f" · weighting {config.get('weighting', 'static')} · seed {config.get('seed', '?')}")

        for warning in models_view.training_warnings(card):  # said while it trained, e.g. a head that died
            st.warning(f"While training: {warning['message']}", icon=":material/warning:")
        st.markdown("##### Metrics")
        ui.table(models_view.metrics_table(card))
        note = (card.get("reference") or {}).get("note")
        if note:
            st.caption(f"Reference (seed): {note}. Our models are trained on this studio's data; where that is not "
                       "the seed's data the numbers are not the same task.")

        left, middle, right = st.columns([1, 1, 1])
        with middle:
            default_button(store, model)
        with left:
            if models_view.private_origin(model) and not _access.allowed("download-private"):
                st.caption("Pulled from a private Hub repository: only the owner can download it.")
            else:
                st.download_button("Download this model (zip)", functools.partial(models_view.model_zip, model.path),
                                   file_name=f"{model.id}.zip", mime="application/zip",
                                   icon=":material/download:", key=f"download-{model.id}",
                                   help="model.keras and card.json")
        with right:
            if not _access.allowed("delete"):
                st.caption("Only the owner of this app can delete models.")
            elif model.source != "store":
                st.caption("Shipped models (weights/) are read-only: they cannot be deleted here.")
            elif st.session_state.get("confirm-delete") != model.id:
                if st.button("Delete this model…", key=f"delete-{model.id}", icon=":material/delete:"):
                    st.session_state["confirm-delete"] = model.id
                    st.rerun()
            else:
                st.warning(f"Delete `{model.id}` from the store ({model.path})? This cannot be undone.")
                yes, no = st.columns(2)
                if yes.button("Yes, delete it", type="primary", key=f"delete-yes-{model.id}"):
                    st.session_state.pop("confirm-delete", None)
                    with ui.guard("deleting the model"):
                        _access.require("delete")
                        store.delete(model.id)
                        evaluation.clear()
                        st.session_state["models-flash"] = f"Deleted {model.id}."
                        st.rerun()
                if no.button("Cancel", key=f"delete-no-{model.id}"):
                    st.session_state.pop("confirm-delete", None)
                    st.rerun()

    # Only the open tab runs (on_change="rerun"): the test split is predicted when its tab is opened.
    curves_tab, confusion_tab, test_tab = st.tabs(["Training curves", "Confusion matrices", "Test split"],
                                                  key="models-tabs", on_change="rerun")

    if curves_tab.open:
        with curves_tab, ui.guard("the training curves"):
            history = models_view.history_curves(card)
            epochs = history.get("epochs", [])
            if not epochs:
                st.info("This card has no training history.")
            else:
                st.plotly_chart(charts.loss_and_lr(history), key="loss-lr")
                recorded = (card.get("history") or {}).get("loss_weights")
                if recorded:  # an adaptive weighting method's effective weights per epoch
                    st.plotly_chart(charts.loss_weight_curves(recorded, epochs), key="loss-weights")
                gradients = (card.get("history") or {}).get("gradients")
                if gradients:
                    ui.conflict_panel(gradients, epochs, key="conflict")
                for task in tasks:
                    curves = {s: history.get(s, {}).get(task.name, {}) for s in ("train", "val")}
                    if any(curves.values()):
                        st.plotly_chart(charts.training_curves(curves, epochs, title=f"{task.name} ({task.kind})"),
                                        key=f"curves-{task.name}")

    if confusion_tab.open:
        with confusion_tab, ui.guard("the confusion matrices"):
            test = card.get("metrics", {}).get("test", {})
            heads = [t for t in tasks if t.head_kind.classes and "confusion_matrix" in test.get(t.name, {})]
            if not heads:
                st.info("No classification head with a confusion matrix in this card.")
            small = [t for t in heads if t.n_classes <= 12]
            large = [t for t in heads if t.n_classes > 12]
            if small:
                columns = st.columns(2)
                for i, task in enumerate(small):
                    with columns[i % 2]:
                        figure = charts.confusion_heatmap(test[task.name]["confusion_matrix"], task.class_names,
                                                          title=f"{task.name}: test split")
                        st.plotly_chart(figure, key=f"cm-{task.name}")
            for task in large:
                st.plotly_chart(charts.confusion_heatmap(test[task.name]["confusion_matrix"], task.class_names,
                                                         title=f"{task.name}: test split"), key=f"cm-{task.name}")
            if heads:
                st.caption("Counts; the shade is the share of the true class's row (recall).")

    if test_tab.open:
        with test_tab, ui.guard("the test-split evaluation"):
            if not datasets.on_this_machine(preset, config.get("data")):
                st.info("The ROC curves, predicted-against-actual plots and the sample grid predict this model's test "
                        "split, whose data is not on this machine. Ways to get it:\n\n"
                        + "\n".join(common.how_to_get_data(preset)))
            else:
                ui.predictor_for(model)  # loads the model (once per process) with its own spinner
                ev = evaluation(model.preset, model.id, str(model.path))
                st.caption(f"{ev.n:,} test examples predicted in {ev.seconds:.2f} s (rebuilt from the card: same data, "
                           f"seed and split as training)")
                binary = [t for t in tasks if t.kind == "binary"]
                regression = [t for t in tasks if not t.head_kind.classes]
                plots = [("roc", t) for t in binary] + [("scatter", t) for t in regression]
                if plots:
                    columns = st.columns(2)
                    for i, (kind, task) in enumerate(plots):
                        with columns[i % 2]:
                            if kind == "roc":
                                points = models_view.roc_points(ev.y_true[task.name], ev.y_pred[task.name])
                                if points is None:
                                    st.info(f"{task.name}: one class only in the test split, no ROC curve")
                                else:
                                    title = f"{task.name}: ROC (positive: {task.class_names[1]})"
                                    st.plotly_chart(charts.roc_curve(*points, title=title), key=f"roc-{task.name}")
                            else:
                                st.plotly_chart(charts.predicted_vs_actual(ev.y_true[task.name], ev.y_pred[task.name],
                                                                           unit=task.unit,
                                                                           title=f"{task.name}: predicted vs actual"),
                                                key=f"scatter-{task.name}")

                st.markdown("##### Test samples, every head's prediction")
                which = st.segmented_control("Show", ["random samples", "mistakes"], default="random samples",
                                             key=f"grid-{model.id}")
                rows = ev.mistake_rows[:len(ev.random_rows)] if which == "mistakes" else ev.random_rows
                tolerance = ", ".join(
                    f"{t.name} within ±{common.format_value(models_view.REGRESSION_TOLERANCE * (hi - lo), t.unit)}"
                    for t in regression for lo, hi in [ev.ranges[t.name]])
                right = f" A value counts as right {tolerance} (10% of its training range)." if tolerance else ""
                st.caption(f"Green: right, red: wrong, grey: no label; {len(ev.mistake_rows):,} of {ev.n:,} test "
                           "examples have at least one wrong head." + right)
                if not rows:
                    st.info("No mistakes on the test split.")
                elif card["input"]["kind"] == "image":
                    per_row = 6
                    for start in range(0, len(rows), per_row):
                        columns = st.columns(per_row)
                        for col, r in zip(columns, rows[start:start + per_row], strict=False):
                            with col:
                                st.image(ev.samples[r].image, width=96)
                                lines = []
                                for v in models_view.verdicts(tasks, ev, r):
                                    c = "gray" if v.correct is None else "green" if v.correct else "red"
                                    extra = "" if v.correct in (True, None) else f" (true: {v.truth})"
                                    lines.append(f":{c}[{v.head}: {v.predicted}{extra}]")
                                st.markdown("  \n".join(lines))
                else:
                    frame, marks = models_view.verdict_table(tasks, ev, rows)
                    st.dataframe(frame.style.apply(lambda _: marks.map(colour), axis=None), hide_index=True)

    # Hugging Face Hub: publish the selected model (pulling is above the model picker).
    if _access.allowed("push"):
        _hub.push_section(model)


main()
