"""A bench's smaller budget: ``--epochs`` and ``--data-option`` in place of a preset's defaults."""

from mtl_core.control.options import _like, kv_list


def add_budget_arguments(ap) -> None:
    ap.add_argument("--epochs", type=int, help="instead of the preset's default")
    ap.add_argument("--data-option", default="", metavar="KEY=VALUE,...",
                    help="instead of the preset's default data options (as train's --data-option)")


def budget(preset, args) -> tuple[dict, dict]:
    """(the config overrides for every training, what they change, for the printed header)."""
    given = kv_list(args.data_option, "--data-option")
    changed = {k: _like(preset.data_defaults.get(k), v, k) for k, v in given.items()}
    told = ({"epochs": args.epochs} if args.epochs else {}) | changed
    overrides = ({"epochs": args.epochs} if args.epochs else {}) | (
        {"data": {**preset.data_defaults, **changed}} if changed else {})
    return overrides, told
