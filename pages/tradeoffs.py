"""Trade-offs: the heads' validation metrics of a loss-weight sweep against each other, the Pareto front and
its hypervolume; picking a model opens its card and makes it the Predict page's model. A loss-conditioned
model (one model for every weighting) gets lambda sliders: its validation metrics (the card's lambda grid)
and its predictions for a chosen input follow the sliders without retraining."""

import shlex

import streamlit as st

from mtl_core.control import datasets, options, pareto
from mtl_core.control.sweeps import submit_sweep
from mtl_core.control.tasks import card_tasks
from mtl_core.views import common, share, tradeoffs
from mtl_core.views import models as models_view
from pages import _access
from pages import _ui as ui

SWEEP_JOBS = "tradeoffs-sweep-jobs"  # {preset: [job ids]} of the sweep launched from this page
NEW_SWEEP = "tradeoffs-new-sweep"  # the models of a sweep that just finished: its group opens
CONDITIONED_JOB = "tradeoffs-conditioned-job"  # {preset: job id} of the loss-conditioned training queued here


@st.cache_data(show_spinner=False, max_entries=64)
def sweep_document(preset_name: str, key: str, ids: tuple[str, ...]) -> dict:
    """The front of one group of stored models (cached by the models it holds)."""
    group = next(g for g in tradeoffs.sweep_groups(ui.store(), preset_name) if g.key == key)
    return group.document()


def open_model(preset_name: str, key: str) -> None:
    """Selectbox callback: the picked model becomes every page's model (Predict first)."""
    model_id = st.session_state.get(key)
    if model_id:
        ui.choose_model(preset_name, model_id)


def conditioned_progress(preset_name: str, job_id: str) -> None:
    """The loss-conditioned training queued from this page, live; the page reruns when its model is stored."""
    from mtl_core.control.jobs import JobQueue
    from mtl_core.views import train as train_form

    queue = JobQueue()
    queue.advance()
    job = queue.get(job_id)
    fraction, line = train_form.job_status(job)
    st.progress(fraction, text=f"Loss-conditioned model, job `{job.id}`: {line}")
    if job.finished:  # the page reruns once: it shows the stored model, or why there is none (and stops polling)
        st.session_state.get(CONDITIONED_JOB, {}).pop(preset_name, None)
        if job.state != "done":
            st.session_state[f"{CONDITIONED_JOB}-failed"] = (f"The loss-conditioned training {job.state}: "
                                                              f"{job.error or 'see the Train page for its log'}")
        st.rerun(scope="app")


def main() -> None:
    ui.page_setup("tradeoffs")

    preset = ui.preset_with_data()  # a table: this session's CSV and its heads
    store = ui.store()
    st.title("Trade-offs")
    st.caption("How much of one head's quality does another head cost? Train one model per loss weighting (a sweep) "
               "and compare their validation metrics, or train one loss-conditioned model that takes the weighting "
               "as an input and move a slider.")
    if len(preset.tasks) < 2:
        st.info(f"{preset.name} has a single head: there is no trade-off to explore.")
        st.stop()

    heads = [t.name for t in preset.tasks]

    # ----------------------------------------------------------------------------- sweep of static models
    st.subheader("Sweep: one model per weighting")
    with ui.guard("the sweep"):
        groups = tradeoffs.sweep_groups(store, preset.name)
        with st.expander("Run a sweep in the background", expanded=not groups, icon=":material/tune:"):
            if not datasets.on_this_machine(preset):  # e.g. CIFAR: the first training downloads it
                st.warning("This preset's data is not on this machine: the sweep's first training downloads it, "
                           "or fails offline. " + " ".join(common.how_to_get_data(preset)))
            c1, c2, c3 = st.columns(3)
            points = c1.slider("Points (weight vectors)", 2, 15, 5, key="tradeoffs-points")
            method = c2.radio("Weight vectors", pareto.METHODS, horizontal=True, key="tradeoffs-method",
                              help="grid: a regular grid over the weight simplex; dirichlet: random, seeded")
            caps = _access.visitor_caps()
            epochs = c3.number_input("Epochs per model", 1, caps.epochs if caps else 200,
                                     min(preset.train.epochs, 10, caps.epochs if caps else 200), key="tradeoffs-epochs")
            vectors = pareto.weight_vectors(heads, points, method)
            st.caption("Weights (each head keeps at least 5% of the total; equal weights are 1 each): "
                       + " · ".join(f"[{tradeoffs.weights_text(v)}]" for v in vectors))
            if caps:
                st.caption(f"As a visitor, each model trains on at most {caps.train_examples:,} examples.")
            if (where := common.cluster_line()) is not None:
                st.caption(where)
            if st.button("Start the sweep", icon=":material/play_arrow:", key="tradeoffs-start"):
                _access.count_request()
                args = ["--epochs", str(int(epochs)), *_access.visitor_args(), *ui.dataset_flags()]
                submitted = submit_sweep(preset.name, vectors, args,
                                         store=store, submitter=_access.session_tag(), check=_access.sweep_check())
                st.session_state.setdefault(SWEEP_JOBS, {})[preset.name] = [j.id for j in submitted.jobs]
                st.success(f"Queued {len(submitted.jobs)} training job(s); {len(submitted.stored)} model(s) were "
                           "in the store already. They appear below as they finish.")

        launched = st.session_state.get(SWEEP_JOBS, {}).get(preset.name)
        if launched:
            @st.fragment(run_every=3)
            def sweep_progress() -> None:
                from mtl_core.control.jobs import JobQueue, progress

                queue = JobQueue()
                queue.advance()
                jobs = {j.id: j for j in queue.list()}
                mine = [jobs[i] for i in launched if i in jobs]
                done = sum(j.finished for j in mine)
                fraction = sum(progress(j)["fraction"] for j in mine) / max(len(mine), 1)
                where = f" on the Ray cluster {mine[0].cluster}" if mine and mine[0].cluster else ""
                st.progress(fraction, text=f"sweep: {done} of {len(mine)} trainings finished{where}")
                failed = [j for j in mine if j.state == "failed"]
                if failed:
                    st.warning(f"{len(failed)} training(s) failed: {failed[0].error}")
                if mine and done == len(mine):
                    st.session_state[SWEEP_JOBS].pop(preset.name, None)
                    # the sweep's group opens when the page reruns, not the group that was shown before
                    st.session_state[NEW_SWEEP] = {j.model.split(",")[0] for j in mine if j.model}
                    st.rerun(scope="app")

            sweep_progress()

        if not groups:
            st.info(f"No multi-head model of {preset.name} yet. Run a sweep above, or from the command line: "
                    f"`python -m mtl_core sweep --preset {preset.name} --points 5`.")
        else:
            finished = st.session_state.pop(NEW_SWEEP, None)
            newest = next((g for g in groups if finished and finished & {m.id for m in g.models}), None)
            if newest is not None:
                st.session_state[f"tradeoffs-group-{preset.name}"] = newest.key
            group_key = st.selectbox("Models compared (the same config but for the loss weights)",
                                     [g.key for g in groups], key=f"tradeoffs-group-{preset.name}",
                                     format_func=lambda k: next(g.label for g in groups if g.key == k))
            group = next(g for g in groups if g.key == group_key)
            doc = sweep_document(preset.name, group.key, tuple(m.id for m in group.models))
            ids = [p["model"] for p in doc["points"]]
            pick_key = f"tradeoffs-pick-{preset.name}"
            left, right = st.columns([2, 1])
            with left:
                event = st.plotly_chart(tradeoffs.front_figure(doc, st.session_state.get(pick_key)),
                                        key=f"tradeoffs-front-{group.key}", on_select="rerun",
                                        selection_mode="points", config={"displayModeBar": False})
                clicked = [p.get("customdata") for p in (event.selection.points if event else [])]
                clicked = next((c for c in clicked if c in ids), None)
                seen_key = f"{pick_key}-clicked"
                if clicked and clicked != st.session_state.get(seen_key):  # a new click on the chart
                    st.session_state[seen_key] = clicked
                    st.session_state[pick_key] = clicked
                    ui.choose_model(preset.name, clicked)
            with right:
                st.metric("Hypervolume of the front", f"{doc['hypervolume']:.4f}",
                          help="The volume of metric space the Pareto-optimal models dominate, measured from a "
                               "reference of uninformed models (chance accuracy, AUC 0.5, the MAE of predicting "
                               "the median). Larger is better; comparable between sweeps on the same data.")
                st.caption(f"{sum(p['pareto'] for p in doc['points'])} of {len(ids)} models Pareto-optimal (★, blue). "
                           "Reference: " + ", ".join(f"{h} {v:.3g}" for h, v in doc["reference"].items())
                           + ". Metrics of the validation split.")
                if st.session_state.get(pick_key) not in ids:
                    st.session_state[pick_key] = next(p["model"] for p in doc["points"] if p["pareto"])
                chosen = st.selectbox("Open a model", ids, key=pick_key, on_change=open_model,
                                      args=(preset.name, pick_key),
                                      format_func=lambda i: ("★ " if doc["points"][ids.index(i)]["pareto"] else "")
                                      + tradeoffs.weights_text(doc["points"][ids.index(i)]["weights"]),
                                      help="Or click a point. The model you open becomes the Predict page's model.")
            ui.table(tradeoffs.points_table(doc))
            model = store.find(chosen)
            if model is not None:
                with st.container(border=True):
                    config = model.card.get("config", {})
                    weights = tradeoffs.weights_text(config.get("loss_weights", {}))
                    st.markdown(f"**`{model.id}`** · loss weights {weights} · {config.get('epochs')} epochs · "
                                f"{model.source}")
                    ui.table(models_view.metrics_table(model.card))
                    chosen_now = st.session_state.get(ui.CHOSEN_KEY, {}).get(preset.name) == model.id
                    if chosen_now:
                        st.caption(":material/check: The Predict and Models pages now use this model.")
                    elif st.button("Use this model in Predict", key=f"tradeoffs-use-{model.id}",
                                   icon=":material/online_prediction:"):
                        ui.choose_model(preset.name, model.id)
                        st.rerun()

    # ----------------------------------------------------------------------------- loss-conditioned model
    st.subheader("One model for every weighting")
    st.caption("A loss-conditioned model (You Only Train Once, Dosovitskiy & Djolonga 2020) takes the loss weights "
               "λ as an input: trained once with λ drawn per example, it answers for any λ.")
    with ui.guard("the loss-conditioned model"):
        models = tradeoffs.conditioned_models(store, preset.name)
        if not models:
            flags = "".join(f" {shlex.quote(a)}" for a in ui.dataset_flags())
            st.info(f"No loss-conditioned model of {preset.name} yet. Train one: "
                    f"`python -m mtl_core train --preset {preset.name} --conditioned{flags}`, or here in the "
                    "background.")
            if st.button("Train one in the background", key="tradeoffs-train-conditioned",
                         icon=":material/play_arrow:"):
                from mtl_core.control.jobs import JobQueue

                queue = JobQueue()
                argv = ["--preset", preset.name, "--conditioned", *_access.visitor_args(preset.train.epochs),
                        *ui.dataset_flags()]
                _access.count_request()
                _access.check_jobs(options.validate(argv)[2], queue.list())
                job = queue.submit(argv, submitter=_access.session_tag())
                queue.advance()
                st.session_state.setdefault(CONDITIONED_JOB, {})[preset.name] = job.id
            if (failed := st.session_state.pop(f"{CONDITIONED_JOB}-failed", None)) is not None:
                st.error(failed)
            if (job_id := st.session_state.get(CONDITIONED_JOB, {}).get(preset.name)) is not None:
                st.fragment(conditioned_progress, run_every=2)(preset.name, job_id)
            st.stop()
        st.session_state.get(CONDITIONED_JOB, {}).pop(preset.name, None)  # its model is here: nothing to follow
        conditioned_ids = [m.id for m in models]  # (not ``ids``: the sweep picker's format_func reads that name)
        picker = f"tradeoffs-cond-{preset.name}"
        if (shared := ui.url_model(conditioned_ids)) and shared != st.session_state.get(picker):
            st.session_state[picker] = shared  # the URL names the view (see app.py)
        model_id = st.selectbox("Loss-conditioned model", conditioned_ids, key=picker,
                                on_change=lambda: st.query_params.update(model=st.session_state[picker]))
        st.query_params["model"] = model_id
        model = next(m for m in models if m.id == model_id)
        card = model.card
        info = card["conditioned"]
        lam_heads = info["heads"]
        st.markdown("**λ**: how much each head's loss counts (normalised to sum 1)")
        columns = st.columns(len(lam_heads))
        shared_lam = share.parse_lambda(st.query_params.get("lambda"), lam_heads)
        raw = {}
        for col, head in zip(columns, lam_heads, strict=True):
            slider = f"tradeoffs-lambda-{model.id}-{head}"
            if slider not in st.session_state:  # a shared link's λ, else the model's default; once per session
                st.session_state[slider] = round(float((shared_lam or info["default"])[head]), 2)
            raw[head] = col.slider(head, 0.0, 1.0, step=0.05, key=slider)
        lam = tradeoffs.lambda_from_sliders(raw, lam_heads)
        st.query_params["lambda"] = share.lambda_text(raw, lam_heads)
        st.caption("λ = " + tradeoffs.weights_text(lam) + f" · training drew λ `{info['sampling']}`")

        near = tradeoffs.cond.nearest_grid_point(card, lam)
        st.markdown(f"**Validation metrics at the nearest grid point** (λ {tradeoffs.weights_text(near['weights'])})")
        metric_cols = st.columns(len(lam_heads))
        tasks = card_tasks(card)
        for col, task in zip(metric_cols, tasks, strict=True):
            metric, value = task.head_kind.front_metric(near["metrics"][task.name])
            col.metric(f"{task.name} {metric}", f"{value:.4f}")
        figures = tradeoffs.grid_figures(card, lam)
        fig_cols = st.columns(len(figures)) if len(figures) > 1 else [st.container()]
        for col, fig in zip(fig_cols, figures, strict=True):
            with col:
                st.plotly_chart(fig, config={"displayModeBar": False}, key=f"tradeoffs-grid-{id(fig)}")

        st.markdown("**Predictions at this λ**")
        predictor = ui.predictor_for(model)
        upload = st.file_uploader("An image of your own (or pick a test sample below)", key="tradeoffs-upload",
                                  type=["png", "jpg", "jpeg", "bmp", "gif", "webp"]) \
            if card["input"]["kind"] == "image" else None
        if upload is not None:
            source, name, truth = upload.getvalue(), upload.name, None
        else:
            if not datasets.on_this_machine(preset, card["config"].get("data")):
                st.info("The test samples come from this model's data, which is not on this machine.")
                st.stop()
            samples = ui.gallery(model, 6, 0)
            index = st.radio("Test sample", list(range(len(samples))), horizontal=True,
                             key=f"tradeoffs-sample-{model.id}", format_func=lambda i: f"#{samples[i].index}")
            sample = samples[index]
            source = sample.x if sample.x is not None else sample.row
            name, truth = f"test sample #{sample.index}", sample.labels
        prediction = predictor.predict([source], [name], loss_weights=lam)
        item = prediction.items[0]
        if "error" in item:
            st.error(item["error"])
        else:
            left, right = st.columns([1, max(len(tasks), 1) * 2])
            if card["input"]["kind"] == "image":
                with left:
                    st.image(common.to_display(predictor.prepare(source, name)), caption=name, width="stretch")
            with right:
                ui.head_panels(tasks, item["outputs"], ui.context_for(model), truth, key=f"tradeoffs-pred-{model.id}")
        if st.button("Use this model in Predict", key=f"tradeoffs-use-cond-{model.id}",
                     help="Predict then uses the model's default λ (its training weights)"):
            ui.choose_model(preset.name, model.id)
            st.success("The Predict page now uses this model (at its default λ).")


main()
