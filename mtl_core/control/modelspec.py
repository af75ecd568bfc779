"""Architectures as plain data: what the builder builds, what the config hash covers.

No TensorFlow here, so presets and cards can describe models without importing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from mtl_core.control.plan import validate_plan


@dataclass(frozen=True)
class HeadSpec:
    """One head: ``trunk`` layers on the shared features, then the features of the heads in
    ``inputs_from`` concatenated in, then ``hidden`` layers (their output is this head's
    *features*, which other heads may take), dropout, and the output layer.

    ``branch_at`` K: the head reads the backbone after its first K layers instead of after all of them (0: the
    standardised input, a branch of its own). A task that needs what the later shared layers throw away (the
    brightness of a shape, where shape and orientation want features that ignore it) gets its own layers
    from there on; None (the default) is the whole backbone.

    ``detach`` puts the head behind a stop-gradient: it reads the shared features but its
    loss does not train the backbone. ``link_gradient`` False does the same for the features it takes
    from other heads: it reads them, and its loss leaves them to their own head (a head that learns fast
    can otherwise push another's units to where they never fire: docs/inside.md). ``output_activation``
    "" means the kind's default (softmax, sigmoid, linear).
    """

    task: str
    trunk: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    dropout: float = 0.0
    detach: bool = False
    inputs_from: tuple[str, ...] = ()
    output_activation: str = ""
    link_gradient: bool = True
    branch_at: int | None = None

    def __post_init__(self) -> None:
        if not self.inputs_from:  # no link, nothing to say: one spec (and one model id) for it
            object.__setattr__(self, "link_gradient", True)


@dataclass(frozen=True)
class ModelSpec:
    """Input shape, shared backbone plan and heads. ``backbone`` is a layer plan (see plan.py)."""

    input_shape: tuple[int, ...]
    backbone: tuple[str, ...]
    heads: tuple[HeadSpec, ...]
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_plan(self.backbone, "backbone")
        names = [h.task for h in self.heads]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate head names in {names}")
        for head in self.heads:
            validate_plan(head.trunk + head.hidden, f"head {head.task}")
            if head.branch_at is not None and not 0 <= head.branch_at <= len(self.backbone):
                raise ValueError(f"head {head.task}: branch_at must be in 0..{len(self.backbone)} "
                                 f"(the backbone has {len(self.backbone)} layers), not {head.branch_at}")
            for src in head.inputs_from:
                if src not in names or src == head.task:
                    raise ValueError(f"head {head.task}: cannot take features from {src!r}")
        self.build_order()  # raises on a cycle

    def head(self, task: str) -> HeadSpec:
        return next(h for h in self.heads if h.task == task)

    def build_order(self) -> list[HeadSpec]:
        """Heads sorted so every head comes after the heads it takes features from."""
        done: list[str] = []
        pending = list(self.heads)
        while pending:
            ready = [h for h in pending if all(s in done for s in h.inputs_from)]
            if not ready:
                raise ValueError(f"head links form a cycle among {[h.task for h in pending]}")
            for h in ready:
                done.append(h.task)
                pending.remove(h)
        return [self.head(t) for t in done]

    def only(self, tasks: list[str]) -> ModelSpec:
        """The same architecture with just ``tasks``: links to dropped heads are removed and a
        lone head is attached to the backbone (detached, nothing would train the backbone)."""
        kept = [h for h in self.heads if h.task in tasks]
        heads = []
        for h in kept:
            links = tuple(s for s in h.inputs_from if s in tasks)
            heads.append(replace(h, inputs_from=links, detach=h.detach and len(kept) > 1))
        return replace(self, heads=tuple(heads))

    def with_options(self, *, detach: dict[str, bool] | None = None,
                     links: dict[str, tuple[str, ...]] | None = None,
                     link_gradient: dict[str, bool] | None = None,
                     branch_at: dict[str, int | None] | None = None) -> ModelSpec:
        """A copy with some heads' stop-gradient, incoming links, links' gradient or branch point changed."""
        heads = []
        for h in self.heads:
            if branch_at and h.task in branch_at:
                h = replace(h, branch_at=branch_at[h.task])
            if detach and h.task in detach:
                h = replace(h, detach=detach[h.task])
            if link_gradient and h.task in link_gradient:
                h = replace(h, link_gradient=link_gradient[h.task])
            if links is not None and h.task in links:
                h = replace(h, inputs_from=tuple(links[h.task]))
            heads.append(h)
        return replace(self, heads=tuple(heads))

    @property
    def pretrained_steps(self) -> list[str]:
        """The backbone's ``app:`` steps (pretrained keras.applications networks), if any."""
        return [s for s in self.backbone if s.split(":")[0] == "app"]

    def with_freeze(self, fraction: float) -> ModelSpec:
        """A copy whose pretrained backbone keeps its first ``fraction`` of layers frozen (0: train all)."""
        if not self.pretrained_steps:
            raise ValueError("the backbone has no pretrained network to freeze")
        backbone = tuple(f"app:{s.split(':')[1]}:{fraction:g}" if s.split(":")[0] == "app" else s
                         for s in self.backbone)
        return replace(self, backbone=backbone)

    def to_dict(self) -> dict:
        d = asdict(self)
        for head in d["heads"]:  # at its default, left out: the config hash (model ids) of older models holds
            if head["link_gradient"]:
                del head["link_gradient"]
            if head["branch_at"] is None:
                del head["branch_at"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        heads = tuple(HeadSpec(**{**h, "trunk": tuple(h["trunk"]), "hidden": tuple(h["hidden"]),
                                  "inputs_from": tuple(h["inputs_from"])}) for h in d["heads"])
        return cls(input_shape=tuple(d["input_shape"]), backbone=tuple(d["backbone"]), heads=heads,
                   extra=dict(d.get("extra", {})))
