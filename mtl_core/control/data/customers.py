"""Synthetic customers for churn-spend (seed 003): features, churn (0/1) and next-year spend (USD).

Deterministic by seed. How each column is drawn:

* ``tenure_months``  uniform integer 0..72
* ``contract``       month-to-month 55%, one-year 25%, two-year 20%
* ``payment_method`` electronic check 35%, mailed check 20%, bank transfer 22%, credit card 23%
* ``internet``       fiber 45%, dsl 35%, none 20%
* ``monthly_charges`` 20 + 25 (dsl) / 55 (fiber) + normal(0, 8) USD, clipped to 18..130
* ``support_calls``  Poisson(0.6 + 1.2 if fiber + 1.0 if tenure < 12)
* ``churn``          Bernoulli(sigmoid(z)), z = -1.2 + 1.3·month-to-month - 0.9·two-year - 0.035·tenure
                     + 0.45·support_calls + 0.6·electronic check + 0.012·(monthly_charges - 65) + normal(0, 0.3)
* ``spend``          next-year spend: monthly_charges × months kept, months kept = 12 for a customer who
                     stays and 1 + Beta(2, 3)·8 for one who churns, plus add-ons 4·support_calls·(1 - churn)
                     and normal(0, 40) noise, floored at 0: it depends on the features and on churn.

``missing`` (0..0.9) blanks that fraction of each label column independently, to exercise the
per-head masked loss (a row without a churn label still trains the spend head).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.errors import UserError

FEATURES = ("tenure_months", "contract", "payment_method", "internet", "monthly_charges", "support_calls")


def generate_customers(n: int = 4000, seed: int = 0, missing: float = 0.0) -> pd.DataFrame:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"n must be a positive integer, not {n!r}")
    if not 0 <= missing <= 0.9:
        raise UserError(f"missing must be in [0, 0.9], not {missing!r}")
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.25, 0.20])
    payment = rng.choice(["electronic check", "mailed check", "bank transfer", "credit card"], n,
                         p=[0.35, 0.20, 0.22, 0.23])
    internet = rng.choice(["fiber", "dsl", "none"], n, p=[0.45, 0.35, 0.20])
    charges = 20 + np.where(internet == "fiber", 55, np.where(internet == "dsl", 25, 0)) + rng.normal(0, 8, n)
    charges = np.clip(charges, 18, 130).round(2)
    calls = rng.poisson(0.6 + 1.2 * (internet == "fiber") + 1.0 * (tenure < 12))
    z = (-1.2 + 1.3 * (contract == "month-to-month") - 0.9 * (contract == "two-year") - 0.035 * tenure
         + 0.45 * calls + 0.6 * (payment == "electronic check") + 0.012 * (charges - 65) + rng.normal(0, 0.3, n))
    churn = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    months = np.where(churn == 1, 1 + rng.beta(2, 3, n) * 8, 12.0)
    spend = np.maximum(charges * months + 4 * calls * (1 - churn) + rng.normal(0, 40, n), 0).round(2)
    frame = pd.DataFrame({"tenure_months": tenure, "contract": contract, "payment_method": payment,
                          "internet": internet, "monthly_charges": charges, "support_calls": calls,
                          "churn": churn.astype(object), "spend": spend.astype(object)})
    for col in ("churn", "spend"):
        blank = rng.random(n) < missing
        frame.loc[blank, col] = ""
    return frame.astype(str)


def write_customers_csv(path: str | Path, n: int = 4000, seed: int = 0, missing: float = 0.0) -> Path:
    path = Path(path)
    generate_customers(n, seed, missing).to_csv(path, index=False)
    return path
