"""Model building: a layer-plan interpreter, registered custom layers, and the multi-task builder."""
