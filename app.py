"""Multi-Task Studio: home page. The prediction, data and model pages come with the app issue.

This page imports no TensorFlow, so it opens fast; it reads presets and model cards only.
"""

import streamlit as st

from mtl_core.presets import all_presets
from mtl_core.store import ModelStore

st.set_page_config(page_title="Multi-Task Studio", layout="wide")
st.title("Multi-Task Studio")
st.write("See, train and compare multi-task neural networks: one shared backbone, several heads "
         "(multi-class, binary, regression). The interactive pages come next; today the studio "
         "trains, stores and serves models from the command line: `python -m mtl_core --help`.")

store = ModelStore()
for preset in all_presets():
    model = store.default(preset.name)
    with st.container(border=True):
        st.subheader(f"{preset.title} · `{preset.name}`")
        st.write(preset.description)
        st.write("Heads: " + ", ".join(f"**{t.name}** ({t.kind})" for t in preset.tasks))
        if model is None:
            st.warning(f"No trained model yet. Train one: `python -m mtl_core train --preset {preset.name}`")
        else:
            test = model.card["metrics"]["test"]
            ref = preset.reference.get("metrics", {})
            rows = []
            for head, values in test.items():
                metric, _ = preset.task(head).primary_metric
                rows.append({"head": head, "metric": metric, "this model (test)": round(values[metric], 4),
                             "reference (seed)": ref.get(head, {}).get(metric)})
            st.caption(f"Model `{model.id}` ({model.source}); data: {model.card['data']['source']}")
            st.dataframe(rows, hide_index=True)
            st.caption(f"Reference (seed): {preset.reference.get('note', '')}")
