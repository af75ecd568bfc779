"""A bench's smaller budget: ``--epochs`` and ``--data-option`` in place of a preset's defaults; and
``--link-gradient``, to measure an architecture the preset had before (shapes-3head's seed link)."""

from mtl_core.control.options import _like, kv_list


def add_budget_arguments(ap) -> None:
    ap.add_argument("--epochs", type=int, help="instead of the preset's default")
    ap.add_argument("--data-option", default="", metavar="KEY=VALUE,...",
                    help="instead of the preset's default data options (as train's --data-option)")
    ap.add_argument("--link-gradient", default="", metavar="HEAD=1|0,...",
                    help="instead of the preset's (as train's --link-gradient)")


def budget(preset, args) -> tuple[dict, dict]:
    """(the config overrides for every training, what they change, for the printed header)."""
    given = kv_list(args.data_option, "--data-option")
    changed = {k: _like(preset.data_defaults.get(k), v, k) for k, v in given.items()}
    told = ({"epochs": args.epochs} if args.epochs else {}) | changed
    overrides = ({"epochs": args.epochs} if args.epochs else {}) | (
        {"data": {**preset.data_defaults, **changed}} if changed else {})
    flows = {h: v in ("1", "true") for h, v in kv_list(args.link_gradient, "--link-gradient").items()}
    if flows:
        overrides["model"] = preset.model.with_options(link_gradient=flows).to_dict()
        told["link gradient"] = args.link_gradient
    return overrides, told
