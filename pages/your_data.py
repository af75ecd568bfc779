"""Your data: upload a CSV, choose its target columns (one head each, kinds inferred and changeable), see the
heads with their class balance or distribution, then train it on the Train page with its sliders. The file is
kept under this session's own folder; models trained on it are listed only for this session (and the owner)."""

import streamlit as st

from mtl_core.errors import UserError
from mtl_core.views import charts
from mtl_core.views import your_data as view
from pages import _access
from pages import _ui as ui

DATASET_KEY = ui.DATASET_KEY


def main() -> None:
    ui.page_setup("your_data")
    st.title("Your data")
    st.caption("A CSV with a header row: pick the columns to predict (one head each) and the studio builds a "
               f"multi-task model of the rest. Up to {view.MAX_MB} MB. Binary, multiclass and regression kinds are "
               "read from the values; missing feature values are filled from the training split, a missing label "
               "leaves only its own head out for that row. Your file stays in this session's folder on the server.")

    upload = st.file_uploader("CSV file", type=["csv", "tsv", "txt"], key="your-data-upload")
    if upload is not None:
        with ui.guard("reading your file"):
            _access.check_upload([upload.getvalue()], [upload.name])
            saved = view.save_upload(upload.getvalue(), upload.name, _access.session_tag())
            current = st.session_state.get(DATASET_KEY) or {}
            if current.get("fingerprint") != saved.fingerprint:
                st.session_state[DATASET_KEY] = {"path": str(saved.path), "name": saved.name,
                                                 "fingerprint": saved.fingerprint, "rows": saved.rows}
    dataset = st.session_state.get(DATASET_KEY)
    if not dataset:
        st.info("No file yet. Any table works: one row per example, a column per feature and per target.")
        st.stop()

    from pathlib import Path

    path = Path(dataset["path"])
    st.markdown(f"**{dataset['name']}** · {dataset['rows']:,} rows · fingerprint `{dataset['fingerprint'][:12]}`")
    with ui.guard("the columns"):
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
        kinds = {}
        columns = st.columns(min(len(chosen), 4))
        inferred = {r.column: r.kind for r in roles}
        for i, column in enumerate(chosen):
            kinds[column] = columns[i % len(columns)].selectbox(
                f"kind of {column}", view.KIND_CHOICES, key=f"your-data-kind-{column}",
                format_func=lambda k, c=column: f"auto ({inferred[c]})" if k == "auto" else k)
        dataset["targets"] = kinds
        try:
            plan = view.plan(path, kinds)
        except UserError as exc:
            st.error(str(exc))
            st.stop()

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
                    st.caption(f"{head.missing:,} rows without this label: they train the other heads only")
        st.caption(f"Features ({len(plan.features)}): " + ", ".join(plan.features))
        for column, why in plan.excluded.items():
            st.caption(f"Left out: `{column}` ({why}).")
        for column, why in plan.flagged.items():
            st.warning(f"`{column}` {why} Leave it out (keep it only if it is known when predicting).")

        dataset["options"] = view.data_options(path, kinds)
        st.session_state[DATASET_KEY] = dataset
        if st.button("Train on it", type="primary", icon=":material/fitness_center:", key="your-data-train"):
            st.session_state["studio-next-preset"] = "table"  # app.py sets the sidebar's picker before drawing it
            st.switch_page("pages/train.py")


main()
