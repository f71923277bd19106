"""scripts/code_diagnosis.py (the p = 3 diagnosis in docs/results.md) on codes whose answer is known."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from welavae.data import make_blobs, polar_factors

_spec = importlib.util.spec_from_file_location("code_diagnosis", Path(__file__).parents[1] / "scripts" / "code_diagnosis.py")
diag = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diag)


def test_monotone_rmse_by_hand():
    x = np.arange(4.0)
    assert diag.monotone_rmse(x, x ** 2) == 0.0 and diag.monotone_rmse(x, -x) == 0.0
    # y = 0,1,0,1: increasing fit pools the middle pair → 0, .5, .5, 1 (mean squared error 0.125);
    # decreasing fit pools everything → 0.5 (0.25); the better is sqrt(0.125).
    assert diag.monotone_rmse(x, np.array([0.0, 1, 0, 1])) == pytest.approx(math.sqrt(0.125))


def test_polar_code_is_monotone_and_a_folded_one_is_not(tmp_path):
    f = make_blobs(1).factors
    phi, d = polar_factors(f).T
    polar = diag.diagnose(np.stack([phi, d], 1), f)
    assert polar["polar"] < 1.0 and polar["phi_mono_deg"] < 1e-9 and polar["d_mono_px"] < 1e-9
    # folded at 45°: mirror images share a code, so the angle is lost on one side and the position with it
    folded = diag.diagnose(np.stack([np.abs(phi - math.pi / 4), d], 1), f)
    assert folded["phi_mono_deg"] > 10 and folded["knn"] > 20 * polar["knn"]
    np.save(tmp_path / "mu.npy", np.stack([np.stack([phi, d], 1)]))
    np.save(tmp_path / "factors.npy", f)
    assert diag.main([str(tmp_path)]) == 0
    assert diag.main([str(tmp_path / "missing")]) == 2
