"""Train: one slider per head's loss weight, a weighting method and the training options; "Train" queues a
background job (a separate process, see mtl_core.control.jobs) and the page follows it live: progress, per-head
validation curves, adaptive loss weights, Cancel. A config trained before opens its stored model at once.
Every option here is a flag of `python -m mtl_core train`; the page shows the equivalent command."""

from dataclasses import dataclass

import streamlit as st

from mtl_core.control import datasets, methods
from mtl_core.control.jobs import JobQueue
from mtl_core.control.presets.base import Preset
from mtl_core.errors import UserError
from mtl_core.views import charts, common
from mtl_core.views import train as train_form
from pages import _access
from pages import _ui as ui


@dataclass
class JobPanel:
    """What the live job panel needs besides the job: the preset, its heads and the queue."""

    preset: Preset
    heads: list[str]
    queue: JobQueue


POLL_SECONDS = 1.0
JOB_KEY = "train-job"  # {preset: job id} followed by this session


def show_queue(s: JobPanel, followed: str | None) -> None:
    """The queue and the history of jobs, redrawn while any job is queued or running (a job that ends is shown
    as done, not frozen at its last percentage)."""
    jobs = s.queue.list()
    if not jobs:
        st.caption("No jobs yet. The CLI sees the same queue: `python -m mtl_core jobs`.")
        return
    st.dataframe(train_form.jobs_table(jobs), hide_index=True, column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")})
    waiting = [j.id for j in jobs if j.state in ("queued", "running") and j.id != followed and _access.owns(j)]
    if waiting:
        c1, c2 = st.columns([3, 1])
        chosen = c1.selectbox("Another job", waiting, key="train-other-job", label_visibility="collapsed")
        if c2.button("Cancel that job", key="train-cancel-other"):
            with st.spinner("Stopping…"):
                s.queue.cancel(chosen)
            st.rerun()
    if all(j.finished for j in jobs) and st.session_state.pop("train-queue-watching", False):
        st.rerun(scope="app")  # every job ended: stop polling (the next run draws the table without run_every)


# ----------------------------------------------------------------------------- the form
def weight_input(task, default: float, key: str) -> float:
    """A head's loss weight: a slider to drag and a box to type in, kept equal (each one's change sets the
    other before the page reruns)."""
    slider, box = f"{key}", f"{key}-typed"
    st.session_state.setdefault(slider, float(default))
    st.session_state.setdefault(box, float(default))

    def follow(source: str, target: str) -> None:
        st.session_state[target] = st.session_state[source]

    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.slider(f"{task.name} ({task.kind})", key=slider, on_change=follow, args=(slider, box),
                help=f"How much {task.name}'s loss counts in the total (preset default {default:g}). "
                     f"0 leaves the head untrained.", **train_form.SLIDER)
    right.number_input(f"{task.name} weight", key=box, on_change=follow, args=(box, slider), format="%.2f",
                       label_visibility="collapsed", **train_form.SLIDER)
    return float(st.session_state[slider])


# ----------------------------------------------------------------------------- the job
def show_job(s: JobPanel, job_id: str) -> None:
    s.queue.advance()  # notices a finished or dead training and starts the next one
    job = s.queue.get(job_id)
    fraction, line = train_form.job_status(job)
    st.progress(fraction, text=f"Job `{job.id}`: {line}")
    if job.state in ("queued", "running") and _access.owns(job):
        if st.button("Cancel", key=f"cancel-{job.id}", icon=":material/stop:"):
            with st.spinner("Stopping the training…"):
                s.queue.cancel(job.id)
            st.rerun(scope="app")
    elif job.state == "done" and job.model:
        opened = st.session_state.setdefault("train-opened-jobs", set())
        if job.id not in opened:  # once: the user may pick another model on those pages afterwards
            opened.add(job.id)
            ui.choose_model(s.preset.name, job.model.split(",")[0])
        st.success(f"Model `{job.model}` is ready: it is now the model of the Predict and Models pages.")
    elif job.state == "failed":
        st.error(f"The training failed: {job.error or 'no reason recorded'}. The store is as it was.")
        with st.expander("Last lines of the log"):
            st.code("\n".join(job.log_tail or []) or "(empty)")
    curves = train_form.job_curves(job)
    for message in curves["warnings"]:  # e.g. a head that stopped learning (engine/conflict.py)
        st.warning(message, icon=":material/warning:")
    if curves["epochs"]:
        columns = st.columns(min(len(s.heads), 3))
        for i, task in enumerate(t for t in s.preset.tasks if t.name in curves["val"] or t.name in curves["train"]):
            metric, _ = task.primary_metric
            with columns[i % len(columns)]:
                st.plotly_chart(charts.training_curves(train_form.head_curves(curves, task.name, metric),
                                                       curves["epochs"], title=f"{task.name}: {metric}"),
                                key=f"live-{job.id}-{task.name}")
        if curves["loss_weights"]:
            st.plotly_chart(charts.loss_weight_curves(curves["loss_weights"], curves["epochs"]),
                            key=f"live-{job.id}-weights")
        if curves["gradients"]["cosine"]:
            ui.conflict_panel(curves["gradients"], curves["epochs"], key=f"live-{job.id}-conflict")
    elif job.state == "running":
        st.caption("Curves appear after the first epoch.")
    if job.finished and st.session_state.get("train-watching") == job.id:
        st.session_state.pop("train-watching")
        st.rerun(scope="app")  # stop polling: the next run draws this panel without run_every


def main() -> None:
    ui.page_setup("train")

    preset = ui.preset_with_data()  # the table preset: this session's CSV, one slider per target
    store = ui.store()
    queue = JobQueue()
    defaults = train_form.form_defaults(preset)
    heads = [t.name for t in preset.tasks]
    key = f"train-{preset.name}"
    s = JobPanel(preset, heads, queue)

    st.title("Train")
    st.caption(f"Retrain `{preset.name}` with other loss weights and watch what the model becomes. Trainings run "
               "in the background, one at a time on this machine (the others wait in the queue below); they go on "
               "when you leave the page and are still listed after a reload or a restart of the app.")
    if not datasets.on_this_machine(preset):
        st.warning("This preset's data is not on this machine, so a training here would fail. "
                   + " ".join(common.how_to_get_data(preset)))

    # ----------------------------------------------------------------------------- the form
    weights_col, options_col = st.columns([1, 1], gap="large")
    with weights_col:
        st.subheader("Loss weights")
        weights = {}
        for task in preset.tasks:
            weights[task.name] = weight_input(task, defaults.loss_weights[task.name], f"{key}-w-{task.name}")
        conditioned = st.toggle("One model for every weighting (loss-conditioned)", key=f"{key}-conditioned",
                                help="The loss weights become an input of the model, drawn per example while it "
                                     "trains; the sliders give its default. Explore it on the Trade-offs page.")
        choices = train_form.method_choices()
        method = st.selectbox("Weighting method", list(choices), key=f"{key}-method", disabled=conditioned,
                              help="Adaptive methods change the weights during training; the sliders multiply them.")
        st.caption(f"**{method}**: {choices[method]}")
        if conditioned:
            method = defaults.weighting
        method_options = {}
        for option in methods.methods()[method].options:  # e.g. GradNorm's alpha
            method_options[option.name] = st.number_input(
                f"{method}: {option.name}", option.low, option.high, option.default, (option.high - option.low) / 100,
                key=f"{key}-{method}-{option.name}", help=option.help)

    with options_col:
        st.subheader("Training")
        a, b = st.columns(2)
        caps = _access.visitor_caps()  # a visitor's form starts within the quotas (and says so)
        max_epochs = caps.epochs if caps else 1000
        epochs = a.number_input("Epochs", 1, max_epochs, min(defaults.epochs, max_epochs), key=f"{key}-epochs",
                                help="At most this many; early stopping on the validation loss may stop sooner."
                                     + (f" Visitors: at most {caps.epochs}." if caps else ""))
        batch_size = b.number_input("Batch size", 1, 8192, defaults.batch_size, key=f"{key}-batch")
        lr = a.number_input("Learning rate", 1e-6, 1.0, float(defaults.lr), format="%.5f", step=1e-4, key=f"{key}-lr")
        seed = b.number_input("Seed", 0, 2**31 - 1, defaults.seed, key=f"{key}-seed")
        limit = a.number_input("Training-set size", 0, caps.train_examples if caps else 10_000_000,
                               caps.train_examples if caps else 0, step=100, key=f"{key}-limit",
                               help="Take a random subset of this many examples before the split into training, "
                                    "validation and test (0: all of them)."
                                    + (f" Visitors: at most {caps.train_examples:,}." if caps else ""))
        if limit:
            sizes = train_form.split_sizes(int(limit))
            a.caption(f"{int(limit):,} examples → {sizes['train']:,} to train on, {sizes['validation']:,} to "
                      f"validate, {sizes['test']:,} to test")
        precision = b.selectbox("Precision", ["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                                key=f"{key}-precision",
                                help="auto: float16 mixed precision on a GPU, bfloat16 on a CPU that has it, "
                                     "else float32.")
        device = a.selectbox("Device", ["auto", "gpu", "cpu"], key=f"{key}-device",
                             help="auto: the GPU when TensorFlow sees one (several: MirroredStrategy), else the CPU.")
        workers = 1
        if (where := common.cluster_line()) is not None:
            workers = b.number_input("Workers per training", 1, 256, 1, key=f"{key}-workers",
                                     help="More than 1: one training data-parallel over this many Ray Train "
                                          "workers of the cluster (MultiWorkerMirroredStrategy), one CPU each.")
            st.caption(where)
        with st.expander("Head options", expanded=False):
            detach, links, link_gradient, branch_at = {}, {}, {}, {}
            branches = train_form.branch_choices(preset)
            for head in heads:
                left, right = st.columns([1, 2])
                detach[head] = left.checkbox(f"stop-gradient: {head}", value=defaults.detach.get(head, False),
                                             key=f"{key}-detach-{head}",
                                             help="The head learns from the shared features without changing them.")
                links[head] = right.multiselect(f"{head} also takes the features of", [h for h in heads if h != head],
                                                default=defaults.links.get(head, []), key=f"{key}-link-{head}")
                if links[head]:
                    link_gradient[head] = right.checkbox(
                        "and its loss trains them", value=defaults.link_gradient.get(head, True),
                        key=f"{key}-link-gradient-{head}",
                        help=f"On: {head}'s loss also trains the features it takes (the seed's design). Off: it "
                             "reads them without changing them, so a head that learns fast cannot push another's "
                             "units to where they never fire.")
                default_branch = defaults.branch_at.get(head)
                label = right.selectbox(
                    f"{head} reads the backbone", list(branches),
                    index=list(branches.values()).index(default_branch) if default_branch in branches.values() else 0,
                    key=f"{key}-branch-{head}",
                    help="Where the head leaves the shared backbone: a task that needs what the later layers throw "
                         "away (a shape's brightness, when the other heads want features that ignore it) reads an "
                         "earlier layer and gets layers of its own from there.")
                branch_at[head] = branches[label]
        freeze = None
        if defaults.freeze is not None:
            freeze = st.slider("Frozen share of the pretrained backbone", 0.0, 1.0, defaults.freeze, 0.05,
                               key=f"{key}-freeze", help="The first layers of the ImageNet network keep their weights.")

    form = train_form.TrainForm(
        loss_weights=weights, weighting=method, weighting_options=method_options, epochs=int(epochs),
        batch_size=int(batch_size),
        lr=float(lr), seed=int(seed), limit=int(limit) or None, detach=detach, links=links,
        link_gradient=link_gradient, branch_at=branch_at, freeze=freeze,
        precision=precision, device=device, conditioned=conditioned, data_args=ui.dataset_flags(),
        workers=int(workers))
    argv = train_form.train_args(preset, form)

    config, trained = None, None
    try:
        config = train_form.check(argv)
        trained = train_form.find_trained(store, config)
    except UserError as exc:
        st.error(train_form.plain_words(str(exc)))
    with st.expander("The same training from a terminal"):
        st.code(train_form.command_line(argv), language="bash", wrap_lines=True)

    left, right = st.columns([1, 3])
    if left.button("Train", type="primary", disabled=config is None, key=f"{key}-submit", icon=":material/play_arrow:"):
        if trained is not None:
            ui.choose_model(preset.name, trained.id)
            st.session_state["train-flash"] = (f"This config was trained before: model `{trained.id}` is open on the "
                                               "Predict and Models pages (nothing was retrained).")
            st.rerun()
        queued = False
        with ui.guard("starting the training"):  # a refusal (a visitor's quota) stays on the page
            _access.count_request()
            _access.check_jobs(config, queue.list())
            job = queue.submit(argv, submitter=_access.session_tag())
            queue.advance()
            st.session_state.setdefault(JOB_KEY, {})[preset.name] = job.id
            queued = True
        if queued:
            st.rerun()
    if trained is not None:
        right.info(f"Trained before: model `{trained.id}`. Train opens it instead of training again.")

    flash = st.session_state.pop("train-flash", None)
    if flash:
        st.success(flash)

    followed = st.session_state.get(JOB_KEY, {}).get(preset.name)
    with ui.guard("the job list"):
        jobs = queue.list()
        if followed is None:  # after a reload: the newest job of this preset
            followed = next((j.id for j in jobs if j.preset == preset.name), None)
        if followed is not None:
            st.subheader("Training")
            job = queue.get(followed)
            active = not job.finished
            if active:
                st.session_state["train-watching"] = job.id
            with ui.guard("the training's progress"):
                st.fragment(show_job, run_every=POLL_SECONDS if active else None)(s, followed)

        st.subheader("Queue")
        active = any(not j.finished for j in jobs)
        if active:
            st.session_state["train-queue-watching"] = True
        st.fragment(show_queue, run_every=POLL_SECONDS * 2 if active else None)(s, followed)


main()
