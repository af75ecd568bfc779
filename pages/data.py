"""Data: what a preset learns from. Samples with every label, class balance per classification head
(per split), the distribution of each regression target. No model and no TensorFlow needed."""

import numpy as np
import streamlit as st

from mtl_core.control import datasets
from mtl_core.control.presets import get_preset
from mtl_core.views import charts, common
from mtl_core.views import data as data_view
from pages import _ui as ui


@st.cache_data(show_spinner="Loading the data…", max_entries=16)
def overview(preset_name: str, source: str, folder: str) -> data_view.DataOverview:
    preset = get_preset(preset_name)
    options = {"source": source, "dir": folder} if folder else None
    return data_view.data_overview(preset, options)


def main() -> None:
    ui.page_setup("data")

    preset = ui.current_preset()
    st.title("Data")
    st.caption(f"{preset.title} · `{preset.name}`")
    if preset.data_defined:  # its data is the user's own table, shown where it is uploaded
        st.info(f"**{preset.name}** learns from your own data: its targets, class balance and distributions are "
                "on the Your data page.")
        st.page_link("pages/your_data.py", label="Your data", icon=":material/upload_file:")
        st.stop()

    folder = ""
    if not datasets.on_this_machine(preset):
        st.info(f"**{preset.name}** has no offline data set, and nothing is downloaded from this page. "
                "Ways to get its data:\n\n" + "\n".join(common.how_to_get_data(preset)))
        if preset.dir_source:
            folder = st.text_input("Folder on this machine holding the data in its own format",
                                   key=f"data-dir-{preset.name}", placeholder="/path/to/folder",
                                   help=preset.data_sources.get(preset.dir_source, "")).strip()
        if not folder:
            st.stop()

    with ui.guard("loading the data"):
        data = overview(preset.name, preset.dir_source if folder else "", folder)
        st.markdown(f"**Source:** {data.source}")
        sizes = " · ".join(f"{k} {v:,}" for k, v in data.sizes.items())
        st.caption(f"{data.n:,} examples, split {sizes} (the default training's split: test held out first, "
                   f"stratified by `{preset.stratify or 'nothing'}`)")

        st.subheader("Samples with all their labels")
        if data.table is not None:
            ui.table(data.table)
        else:
            per_row = 8
            for start in range(0, len(data.samples), per_row):
                columns = st.columns(per_row)
                for col, sample in zip(columns, data.samples[start:start + per_row], strict=False):
                    with col:
                        st.image(sample.image, width=96)
                        st.caption("  \n".join(f"{h}: **{v}**" for h, v in sample.labels.items()))

        classification = [t for t in preset.tasks if t.name in data.balance]
        if classification:
            st.subheader("Class balance")
            columns = st.columns(2)
            for i, task in enumerate(classification):
                # many classes get the full width; the others share a row two by two
                where = st.container() if task.n_classes > 20 else columns[i % 2]
                with where:
                    st.plotly_chart(charts.class_balance(data.balance[task.name], title=f"{task.name} ({task.kind})"),
                                    key=f"balance-{task.name}")
                    if data.missing.get(task.name):
                        st.caption(f"{data.missing[task.name]:,} rows without a label for {task.name}")

        regression = [t for t in preset.tasks if t.name in data.targets]
        if regression:
            st.subheader("Regression targets")
            columns = st.columns(2)
            for i, task in enumerate(regression):
                with columns[i % 2]:
                    values = data.targets[task.name]
                    st.plotly_chart(charts.histogram(values, name=task.name, unit=task.unit,
                                                     title=f"{task.name}: distribution"), key=f"hist-{task.name}")
                    missing = data.missing.get(task.name)
                    st.caption(f"min {common.format_value(float(values.min()), task.unit)} · median "
                               f"{common.format_value(float(np.median(values)), task.unit)}"
                               f" · max {common.format_value(float(values.max()), task.unit)}"
                               + (f" · {missing:,} rows without a value" if missing else ""))


main()
