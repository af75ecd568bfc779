"""Multi-Task Studio: the Streamlit entry point.

``st.navigation`` over the scripts in ``pages/`` (Streamlit no longer auto-discovers ``pages/`` once
an app calls it, so every page is listed here) and the sidebar preset picker, shared by every page
through ``st.session_state["preset"]``. Nothing here imports TensorFlow: the home page opens fast, and
only the pages that run a model load it (once per process, see ``pages/_ui.py``). The server's warm-up
(``mtl_core/views/warmup.py``) imports it in a background thread meanwhile, with the model a first visit opens.

    streamlit run app.py
"""

from pathlib import Path

import streamlit as st

from mtl_core.control.presets import all_presets
from mtl_core.control.store import ModelStore
from mtl_core.views.share import first_preset
from pages import _access, _hub
from pages import _ui as ui

# The favicon is a file of this repository: a :material/...: icon is fetched from a font CDN, which fails offline.
st.set_page_config(page_title="Multi-Task Studio", page_icon=str(Path(__file__).parent / "pages" / "favicon.png"),
                   layout="wide")

presets = {p.name: p for p in all_presets()}
# The URL names the view (?preset=, and ?model= on the pages with a model picker): a shared link, a reload or the
# browser's back button opens what it names. Every choice in the app writes the URL at once (the sidebar's
# on_change below, ui.choose_model, the pickers), so the URL never undoes a choice.
if st.session_state.get("studio-next-preset") in presets:  # a page asked for a preset (Your data -> Train)
    st.session_state["preset"] = st.session_state.pop("studio-next-preset")
    st.query_params["preset"] = st.session_state["preset"]
if st.query_params.get("preset") in presets:
    st.session_state["preset"] = st.query_params["preset"]
elif st.session_state.get("preset") not in presets:  # a first visit (or a preset that went away)
    store = ModelStore()
    st.session_state["preset"] = first_preset(list(presets.values()), lambda name: store.default(name) is not None)


def preset_chosen() -> None:
    """The sidebar's preset changed: the URL follows (the previous preset's model no longer applies)."""
    st.query_params["preset"] = st.session_state["preset"]
    if "model" in st.query_params:
        del st.query_params["model"]


pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/predict.py", title="Predict", icon=":material/online_prediction:"),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/your_data.py", title="Your data", icon=":material/upload_file:"),
    st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
    st.Page("pages/train.py", title="Train", icon=":material/fitness_center:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/tradeoffs.py", title="Trade-offs", icon=":material/balance:"),
]
page = st.navigation(pages)
st.session_state["studio-entry"] = True  # see pages/_ui.py: page_setup
deep_link = st.session_state.pop("studio-deep-link", None)
if deep_link:
    st.switch_page(deep_link, query_params=st.query_params.to_dict())

with st.sidebar:
    st.selectbox("Preset", list(presets), key="preset", on_change=preset_chosen,
                 format_func=lambda n: f"{n} ({presets[n].input_kind})",
                 help="The reference system every page shows: its data, its heads and its models.")
    chosen = presets[st.session_state["preset"]]
    st.query_params["preset"] = chosen.name
    heads = ", ".join(f"{t.name} ({t.kind})" for t in chosen.tasks) or "the targets you choose on Your data"
    st.caption(f"**{chosen.title}**  \nheads: {heads}")
    _access.sign_in_box()  # a public app (a Space): visitor or owner, and "Sign in with Hugging Face"

_hub.pull_at_start()  # once per process: configured Hub repos with nothing in the store yet, with progress
page.run()
# once per process, after the first page has run (its rendering is not slowed): TensorFlow and the first
# visit's model, in the background
ui.warm_up(list(presets.values()))
