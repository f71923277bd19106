"""Known-answer tests for the downstream-task metric (disentanglement_lib ``downstream_task.py``).

Sizes are kept small (≤ 1000 training points, a few hundred for the trees) so
the file runs in seconds; the protocol is the same at disentanglement_lib's 10000.
"""
import json
import math

import numpy as np
import pytest

from welavae.data import make_blobs
from welavae.metrics import downstream_accuracies, downstream_task

BLOBS = make_blobs(1).factors.astype(float)  # (4096, 2): every (c1, c2) of the 64 × 64 grid once


def _bins10(c):
    """10 equal-width bins of a 0 … 63 pixel coordinate: bin k holds the c with 10·c // 64 = k."""
    return (np.asarray(c) * 10 // 64).astype(np.int64)


def _split(n, n_train, seed=0):
    order = np.random.default_rng(seed).permutation(n)
    return order[:n_train], order[n_train:]


# ---------------------------------------------------- disentanglement_lib itself
def _dlib_compute_loss(x_train, y_train, x_test, y_test, predictor_fn):
    """Transcription of disentanglement_lib's ``_compute_loss`` (samples in rows for x,
    factors in rows for y), from
    https://github.com/google-research/disentanglement_lib/blob/master/disentanglement_lib/evaluation/metrics/downstream_task.py
    """
    num_factors = y_train.shape[0]
    train_loss = []
    test_loss = []
    for i in range(num_factors):
        model = predictor_fn()
        model.fit(x_train, y_train[i, :])
        train_loss.append(np.mean(model.predict(x_train) == y_train[i, :]))
        test_loss.append(np.mean(model.predict(x_test) == y_test[i, :]))
    return train_loss, test_loss


def _dlib_logistic_regression_cv():
    """``utils.logistic_regression_cv``, transcribed from the same repository's evaluation/metrics/utils.py."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    return LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))


def _dlib_gradient_boosting_classifier():
    """``utils.gradient_boosting_classifier`` with random_state=0 added (ties between features)."""
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(random_state=0)


def _small_case():
    """A noisy, partly entangled code of two 10-bin Blobs targets: accuracies well inside (0, 1)."""
    rng = np.random.default_rng(3)
    idx = rng.choice(len(BLOBS), 500, replace=False)
    c = BLOBS[idx]
    mu = np.stack([c[:, 0] + c[:, 1] / 4, c[:, 1], rng.normal(size=len(c))], 1) / 20
    mu[:, :2] += rng.normal(scale=0.2, size=(len(c), 2))
    return mu, _bins10(c)


# The transcriptions fit sklearn's classifiers as disentanglement_lib did, with its warnings.
TRANSCRIPTION_WARNINGS = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                                    "ignore::FutureWarning")


@TRANSCRIPTION_WARNINGS
@pytest.mark.parametrize("predictor, predictor_fn", [("logistic", _dlib_logistic_regression_cv),
                                                     ("gbt", _dlib_gradient_boosting_classifier)])
def test_accuracies_equal_disentanglement_libs_compute_loss(predictor, predictor_fn):
    mu, y = _small_case()
    tr, te = slice(0, 300), slice(300, None)
    ref_train, ref_test = _dlib_compute_loss(mu[tr], y[tr].T, mu[te], y[te].T, predictor_fn)
    acc_train, acc_test = downstream_accuracies(mu[tr], y[tr], mu[te], y[te], predictor=predictor, seed=0)
    np.testing.assert_array_equal(acc_train, ref_train)
    np.testing.assert_array_equal(acc_test, ref_test)
    assert 0.2 < min(ref_test) < 0.99  # a case where the classifier's choices matter


@TRANSCRIPTION_WARNINGS
def test_downstream_task_is_disentanglement_libs_scores_on_the_documented_draw():
    # compute_downstream_task's keys, for each size the points drawn without replacement by
    # numpy.random.default_rng((seed, size)) (module docstring), the whole test set every time.
    mu, y = _small_case()
    pool, test = slice(0, 400), slice(400, None)
    got = downstream_task(mu[pool], y[pool], mu[test], y[test], num_train=(50, 200), seed=7)
    for size in (50, 200):
        idx = np.random.default_rng((7, size)).permutation(400)[:size]
        train_err, test_err = _dlib_compute_loss(mu[pool][idx], y[pool][idx].T, mu[test], y[test].T,
                                                 _dlib_logistic_regression_cv)
        assert got[f"{size}:mean_train_accuracy"] == np.mean(train_err)
        assert got[f"{size}:mean_test_accuracy"] == np.mean(test_err)
        assert got[f"{size}:min_train_accuracy"] == np.min(train_err)
        assert got[f"{size}:min_test_accuracy"] == np.min(test_err)
        for i in range(2):
            assert got[f"{size}:train_accuracy_factor_{i}"] == train_err[i]
            assert got[f"{size}:test_accuracy_factor_{i}"] == test_err[i]
    assert got["params"]["num_train"] == [50, 200] and got["params"]["num_test"] == 100
    json.dumps(got)  # JSON-ready


# ------------------------------------------------------------------ known answers
def test_a_perfect_code_of_a_binned_coordinate_is_classified_exactly():
    # μ = the Blobs coordinates themselves (standardised, as an encoder's means are), targets =
    # their 10-bin codes.  The coordinates are whole pixels, so adjacent bins are a pixel apart:
    # the classes are separated by a margin, a linear multinomial model classifies every point,
    # and with 1000 training points the cross-validation picks a weak enough penalty to find it.
    mu = (BLOBS - 31.5) / 18.5
    y = _bins10(BLOBS)
    tr, te = _split(len(mu), 3000)
    r = downstream_task(mu[tr], y[tr], mu[te], y[te], num_train=(10, 1000))
    assert r["1000:min_test_accuracy"] == 1.0 and r["1000:min_train_accuracy"] == 1.0
    assert r["10:mean_test_accuracy"] < 0.9  # 10 points cannot place 9 boundaries per target


@pytest.mark.parametrize("predictor, size", [("logistic", 200), ("gbt", 100)])
def test_pure_noise_is_at_chance(predictor, size):
    # Targets uniform over 10 classes and independent of μ and of the training set: each test
    # point is right with probability exactly 1/10 whatever the classifier predicts, so a test
    # accuracy over m = 4000 points is Binomial(m, 0.1) / m, sd √(0.1·0.9 / m) = 0.0047.
    rng = np.random.default_rng(11)
    m = 4000
    mu = rng.normal(size=(size + m, 3))
    y = rng.integers(10, size=(size + m, 2))
    r = downstream_task(mu[:size], y[:size], mu[size:], y[size:], num_train=size, predictor=predictor)
    sd = math.sqrt(0.1 * 0.9 / m)
    for j in range(2):
        assert abs(r[f"{size}:test_accuracy_factor_{j}"] - 0.1) < 4 * sd


def test_a_target_with_one_training_class_is_predicted_as_that_class():
    # disentanglement_lib's classifier would raise; the constant prediction scores the test
    # set's share of that class (here 3 of 4 test points).
    mu = np.arange(12.0)[:, None]
    y_train = np.stack([np.zeros(8, int), np.arange(8) % 2], 1)
    y_test = np.array([[0, 0], [0, 1], [0, 0], [1, 1]])
    r = downstream_task(mu[:8], y_train, mu[8:], y_test, num_train=8)
    assert r["8:train_accuracy_factor_0"] == 1.0 and r["8:test_accuracy_factor_0"] == 0.75


def test_a_size_draws_the_same_points_whichever_other_sizes_are_asked_for():
    mu, y = _small_case()
    both = downstream_task(mu[:400], y[:400], mu[400:], y[400:], num_train=(20, 100), seed=2)
    alone = downstream_task(mu[:400], y[:400], mu[400:], y[400:], num_train=(100,), seed=2)
    assert {k: v for k, v in both.items() if k.startswith("100:")} == {k: v for k, v in alone.items()
                                                                       if k.startswith("100:")}


# ------------------------------------------------------------------------ inputs
GOOD = (np.zeros((20, 2)), np.zeros((20, 1), int), np.zeros((5, 2)), np.zeros((5, 1), int))


@pytest.mark.parametrize(
    "change, kwargs, match",
    [
        ({0: np.zeros((19, 2))}, {}, "mu_train has 19 samples but y_train has 20"),
        ({2: np.zeros((5, 3))}, {}, "mu_test has 3 latents but mu_train has 2"),
        ({3: np.zeros((5, 2), int)}, {}, "y_test has 2 targets but y_train has 1"),
        ({0: np.full((20, 2), np.nan)}, {}, "mu_train contains NaN"),
        ({1: np.full((20, 1), 0.5)}, {}, "y_train column 0 is continuous"),
        ({3: np.full((5, 1), -1)}, {}, "y_test column 0 holds negative values"),
        ({}, {"num_train": 21}, "num_train size 21 exceeds the 20 training samples"),
        ({}, {"num_train": 4}, r"integers >= 5 \(KFold"),
        ({}, {"num_train": (10, 10)}, "distinct"),
        ({}, {"predictor": "svm"}, "predictor must be one of"),
    ],
)
def test_bad_input_gets_one_clear_sentence(change, kwargs, match):
    args = [change.get(i, a) for i, a in enumerate(GOOD)]
    with pytest.raises(ValueError, match=match):
        downstream_task(*args, **kwargs)
