"""Temperature scaling (Guo et al. 2017), fitted at build time on the validation split's reference logits.

One scalar T minimises the NLL of softmax(logits / T): a bounded 1-D search over log T
(scipy's ``minimize_scalar``), bounds 0.05..20. The build folds T into the exported graph
(``tlc.models.calibrated.TemperatureScaled``), so every artifact and the golden set carry calibrated
logits and the ranking (hence accuracy) does not change. netcal offers the same fit for a heavier
dependency; this is a dozen lines.
"""

from __future__ import annotations

import math

import numpy as np
from tlc_runtime.manifest import Calibration
from tlc_runtime.results import softmax

from ..verify.trust import ece, nll

BOUNDS = (0.05, 20.0)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = BOUNDS) -> float:
    """The T within ``bounds`` that minimises the NLL of softmax(logits / T) on ``labels``."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, np.float64)
    result = minimize_scalar(lambda u: nll(z * math.exp(-u), labels), method="bounded",
                             bounds=(math.log(bounds[0]), math.log(bounds[1])), options={"xatol": 1e-6})
    return float(math.exp(result.x))


def fit_calibration(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit T and record ECE and NLL on the same data before and after."""
    temperature = fit_temperature(logits, labels)
    scaled = np.asarray(logits, np.float64) / temperature
    return Calibration(temperature=temperature, ece_before=ece(softmax(logits), labels),
                       ece_after=ece(softmax(scaled), labels), nll_before=nll(logits, labels),
                       nll_after=nll(scaled, labels))
