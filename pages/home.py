"""Home: what the studio is, every preset as a card, where models come from.

Reads presets and model cards only: no TensorFlow, so the first page opens fast. A line says how the
server's warm-up (the first visit's model, loading in the background) is getting on.
"""

import streamlit as st

from mtl_core.control import datasets
from mtl_core.control.presets import all_presets
from mtl_core.control.store import ModelStore, mtl_home, shipped_dir
from mtl_core.views import home as home_view
from mtl_core.views import warmup
from pages import _ui as ui


def warmup_line() -> None:
    """The server's warm-up (app.py), live while it runs: a visitor sees why Predict may take a moment."""
    polling = not warmup.WARMUP.status().done

    @st.fragment(run_every=1.0 if polling else None)
    def line() -> None:
        now = warmup.WARMUP.status()
        if now.key is None:
            return
        if not now.done:
            st.caption(f":material/hourglass_top: Getting the model `{now.key[0]}` ready for Predict: {now.stage}… "
                       f"({now.seconds:.0f} s)")
            return
        if polling:
            st.rerun()  # once: the page stops polling
        if now.error is None:
            st.caption(f":material/check_circle: Model `{now.key[0]}` is ready for Predict "
                       f"(loaded in the background in {now.seconds:.1f} s).")

    line()


def main() -> None:
    ui.page_setup("home")

    st.title("Multi-Task Studio")
    st.write("See, train and compare multi-task neural networks: one shared backbone, several heads "
             "(multi-class, binary, regression). **Predict** shows every head's answer for your image or table "
             "row side by side; **Data** shows what each preset learns from; **Models** shows each trained model's "
             "card, curves and mistakes; **Train** retrains with your loss weights in the background; **Compare** puts "
             "models side by side; **Trade-offs** maps what each weighting buys. Everything here is also on the "
             "command line: `python -m mtl_core --help`.")
    warmup_line()

    store = ModelStore()
    columns = st.columns(2)
    for i, preset in enumerate(all_presets()):
        model = None if preset.data_defined else store.default(preset.name)  # a table model is its owner's
        with columns[i % 2].container(border=True):
            st.subheader(f"{preset.title} · `{preset.name}`")
            st.write(preset.description)
            if preset.data_defined:
                st.page_link("pages/your_data.py", label="Bring your own data: Your data",
                             icon=":material/upload_file:")
            else:
                st.write("Heads: " + ", ".join(f"**{t.name}** ({t.kind})" for t in preset.tasks))
            default_source = preset.data_defaults.get("source", "")
            if datasets.on_this_machine(preset):
                st.caption(f"Data: {preset.data_sources.get(default_source, default_source)}")
            else:
                st.caption("Data: not on this machine, no offline default: "
                           + "; ".join(preset.data_sources.values()))
            if model is None and preset.data_defined:
                st.caption("Heads: the target columns you choose. CLI: `python -m mtl_core train --preset table "
                           "--data-dir FILE.csv --target COLUMN --target OTHER`")
            elif model is None:
                st.warning(f"No trained model yet. Train one: `python -m mtl_core train --preset {preset.name}`")
            else:
                st.page_link("pages/predict.py", label=f"Try it: predict with {preset.name}",
                             icon=":material/online_prediction:", query_params={"preset": preset.name},
                             help="Opens Predict on this preset: upload an image (or a CSV row), or pick a test "
                                  "sample, and see every head's answer.")
                st.caption(f"Model `{model.id}` ({model.source}); data: {model.card['data']['source']}")
                st.dataframe(home_view.headline_metrics(preset, model), hide_index=True)
                st.caption(f"Reference (seed): {preset.reference.get('note', '') or 'none reported'}")

    with st.container(border=True):
        st.subheader("Where models come from")
        st.markdown(
            f"- **shipped**: read-only models for the offline presets in `{shipped_dir()}` "
            f"(`MTL_WEIGHTS` points elsewhere)\n"
            f"- **store**: models you train, in `{mtl_home() / 'models'}` (`MTL_HOME`); a new one "
            f"becomes a preset's default only when you choose it (Make default, on Models)\n"
            "- **Hugging Face Hub**: pull a model from a repo, or publish one, on the Models page "
            "(`python -m mtl_core pull` / `push`); pulled models go into the store")


main()
