"""Static weighting: the configured weights, nothing adapts (the Trainer trains this one through
Keras's own ``compile(loss_weights=...)``; the class is here so every method has the same interface)."""

from mtl_core.engine.weighting.base import Weighting

HELP = "the loss weights you set, fixed for the whole training"


class Static(Weighting):
    name = "static"


METHOD = Static
