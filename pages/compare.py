"""Compare: two or more trained models of the preset side by side: per-head metrics (the best one named),
how each was trained (method, loss weights), and their validation curves and loss weights overlaid."""

import streamlit as st

from mtl_core.control.tasks import card_tasks
from mtl_core.views import charts, compare, conflict
from mtl_core.views import models as models_view
from pages import _ui as ui


def main() -> None:
    ui.page_setup("compare")

    preset = ui.current_preset()
    models = [m for m in ui.store().list(preset.name) if ui.shown_to_session(m)]
    st.title("Compare")

    if len(models) < 2:
        if not models:
            ui.no_model_message(preset)
        else:
            st.info(f"**{preset.name}** has one model so far (`{models[0].id}`): train another one with other loss "
                    "weights or another method on the Train page to compare them.")
        st.stop()

    by_id = {m.id: m for m in models}
    chosen = st.multiselect("Models", list(by_id), default=list(by_id)[:min(3, len(by_id))],
                            key=f"compare-{preset.name}",
                            format_func=lambda i: models_view.picker_label(by_id[i], None),
                            help="Newest first. Pick two or more.")
    picked = [by_id[i] for i in chosen]
    if len(picked) < 2:
        st.info("Pick at least two models.")
        st.stop()

    with ui.guard("the comparison tables"):
        st.subheader("How each was trained")
        ui.table(compare.settings_table(picked))
        split = st.segmented_control("Metrics of", ["test", "validation"], default="test",
                                     key="compare-split") or "test"
        st.subheader(f"Per-head metrics ({split})")
        ui.table(compare.metrics_table(picked, split))

    with ui.guard("the curves"):
        st.subheader("Validation curves")
        tasks = card_tasks(picked[0].card)
        columns = st.columns(min(len(tasks), 3))
        for i, task in enumerate(tasks):
            metric, _ = task.primary_metric
            with columns[i % len(columns)]:
                series = compare.with_legend_labels(compare.curve_series(picked, task.name, metric), picked)
                if series:
                    st.plotly_chart(charts.overlaid_curves(series, metric=metric, title=f"{task.name}: val {metric}"),
                                    key=f"compare-{task.name}-{metric}")
        st.subheader("Loss weights per epoch")
        st.caption("Adaptive methods record their effective weights (static × adaptive) each epoch; static weights "
                   "are flat lines.")
        columns = st.columns(min(len(tasks), 3))
        for i, task in enumerate(tasks):
            series = compare.with_legend_labels(compare.weight_series(picked, task.name), picked)
            if series:
                with columns[i % len(columns)]:
                    st.plotly_chart(charts.overlaid_curves(series, metric="loss weight", title=task.name),
                                    key=f"compare-weights-{task.name}")
        pairs = conflict.pairs(picked)
        if pairs:
            st.subheader("Gradient conflict per epoch")
            st.caption("Cosine of two heads' loss gradients on the shared backbone (a fixed training batch, each "
                       "epoch): below 0 the heads pull it apart. Methods such as PCGrad, CAGrad or Nash-MTL "
                       "change the update when they do.")
            columns = st.columns(min(len(pairs), 3))
            for i, pair in enumerate(pairs):
                series = compare.with_legend_labels(conflict.cosine_series(picked, pair), picked)
                if series:
                    with columns[i % len(columns)]:
                        st.plotly_chart(charts.overlaid_curves(series, metric="cosine", title=pair, y_range=(-1, 1)),
                                        key=f"compare-conflict-{i}")


main()
