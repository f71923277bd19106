"""Downstream classification accuracy of a representation (disentanglement_lib's ``downstream_task``).

Locatello et al. (2019, "Challenging common assumptions in the unsupervised
learning of disentangled representations", §4 and App. B) ask whether a
disentangled code makes simple downstream classifiers cheaper in samples:
google-research/disentanglement_lib, ``evaluation/metrics/downstream_task.py``
(``compute_downstream_task``, ``_compute_loss``) and ``utils.py``
(``logistic_regression_cv``, ``gradient_boosting_classifier``).  For each
training size, one classifier per target column is fitted on that many
training codes and scored by its accuracy on them and on the test codes:

* ``predictor="logistic"``: ``LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))``
  — ten inverse regularisation strengths on a log grid 1e-4 … 1e4, chosen by
  5-fold cross-validated accuracy on the training points (unshuffled folds);
* ``predictor="gbt"``: ``GradientBoostingClassifier()`` with default settings.

The representation is used as it is (no standardisation), as disentanglement_lib does.

disentanglement_lib samples fresh points from the data generator for every
training size and a fresh test set of ``num_test`` points each time; here
arrays are given in, so:

* the training points of size n are n samples of (mu_train, y_train) drawn
  without replacement by ``numpy.random.default_rng((seed, n))``: fresh for
  every size, and the same for a size whichever other sizes are asked for;
  a size larger than the training pool is **refused** (one sentence), never
  silently cut to what is there, so a reported "10000:" is 10000 points;
* the test set is all of (mu_test, y_test), the same for every size; the
  caller passes the test samples (disentanglement_lib uses 5,000), kept apart
  from every training sample — e.g. a :func:`welavae.metrics.split_indices`
  split with the variants of a Blobs position as one group.

Deliberate differences, none of which changes an accuracy: ``scoring="accuracy"``
is passed explicitly (it is LogisticRegressionCV's default in every sklearn
disentanglement_lib ran with; sklearn 1.11 changes the default to the log
loss); the trees get ``random_state=seed`` (disentanglement_lib leaves the
global RNG); a target with one class among the training points is predicted
as that class where disentanglement_lib's classifier crashes.  The logistic
regression is sklearn's current default (multinomial, lbfgs, 100 iterations;
the 2019 sklearn fitted one-vs-rest), and its convergence warnings are
silenced: an unconverged fit is what the protocol measures.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._checks import check_pair

__all__ = ["NUM_TRAIN_SIZES", "PREDICTORS", "downstream_accuracies", "downstream_task"]

#: disentanglement_lib's ``downstream_task.num_train`` of the study configs.
NUM_TRAIN_SIZES = (10, 100, 1000, 10000)
#: predictor name → the classifier disentanglement_lib's gin name builds.
PREDICTORS = {
    "logistic": "LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))",
    "gbt": "GradientBoostingClassifier()",
}
#: KFold(n_splits=5) needs at least five training points.
_FOLDS = 5


def _classifier(predictor: str, seed: int):
    if predictor == "logistic":
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import KFold

        return LogisticRegressionCV(Cs=10, cv=KFold(n_splits=_FOLDS), scoring="accuracy")
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(random_state=seed)


def _check_predictor(predictor) -> str:
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {sorted(PREDICTORS)}, got {predictor!r}")
    return predictor


def downstream_accuracies(x_train, y_train, x_test, y_test, *, predictor: str = "logistic",
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """disentanglement_lib ``downstream_task._compute_loss`` with samples in rows.

    x_train: (n, K) codes, y_train: (n, F) class indices; x_test: (m, K),
    y_test: (m, F).  Fits one ``predictor`` per target column on the training
    points.  Returns the (F,) train and (F,) test accuracies.
    """
    from sklearn.exceptions import ConvergenceWarning

    predictor = _check_predictor(predictor)
    acc_train, acc_test = np.zeros(y_train.shape[1]), np.zeros(y_train.shape[1])
    for j in range(y_train.shape[1]):
        classes = np.unique(y_train[:, j])
        if classes.size < 2:
            pred_train = np.full(len(y_train), classes[0])
            pred_test = np.full(len(y_test), classes[0])
        else:
            model = _classifier(predictor, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # see the module docstring
                # sklearn ≥ 1.9 announces new defaults for l1_ratios / fitted attributes: no effect here
                warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
                model.fit(x_train, y_train[:, j])
            pred_train, pred_test = model.predict(x_train), model.predict(x_test)
        acc_train[j] = np.mean(pred_train == y_train[:, j])
        acc_test[j] = np.mean(pred_test == y_test[:, j])
    return acc_train, acc_test


def _check_sizes(num_train, available: int, predictor: str) -> tuple[int, ...]:
    sizes = (num_train,) if isinstance(num_train, (int, np.integer)) else tuple(num_train)
    least = _FOLDS if predictor == "logistic" else 1
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < least:
            why = " (KFold(n_splits=5) of the logistic regression)" if predictor == "logistic" else ""
            raise ValueError(f"num_train sizes must be integers >= {least}{why}, got {size!r}")
        if size > available:
            raise ValueError(
                f"num_train size {size} exceeds the {available} training samples given; "
                f"pass sizes up to {available} (e.g. num_train=(10, 100, 1000))"
            )
    if not sizes or len(set(sizes)) != len(sizes):
        raise ValueError(f"num_train must list distinct training sizes, got {list(sizes)}")
    return tuple(int(s) for s in sizes)


def _check_targets(y: np.ndarray, name: str) -> None:
    if np.any(y < 0):
        j = int(np.flatnonzero((y < 0).any(axis=0))[0])
        raise ValueError(
            f"{name} column {j} holds negative values (−1 marks a missing label); "
            f"downstream targets must be observed class indices >= 0"
        )


def downstream_task(mu_train, y_train, mu_test, y_test, *, num_train=NUM_TRAIN_SIZES,
                    predictor: str = "logistic", seed: int = 0) -> dict:
    """Downstream accuracy at each training size (disentanglement_lib ``compute_downstream_task``).

    mu_train: (n, K) codes of the training pool, y_train: (n, F) class indices
    of F targets; mu_test: (m, K), y_test: (m, F) the test set (all of it is
    used; disentanglement_lib's is 5,000 points).  ``num_train``: the training
    sizes, each drawn afresh without replacement from the pool (refused when
    larger than n); ``predictor``: "logistic" or "gbt" (see the module docstring).

    Returns a JSON-ready dict with disentanglement_lib's keys, for each size s:
    ``"s:mean_train_accuracy"``, ``"s:mean_test_accuracy"``,
    ``"s:min_train_accuracy"``, ``"s:min_test_accuracy"`` (mean and lowest over
    targets) and ``"s:train_accuracy_factor_j"``, ``"s:test_accuracy_factor_j"``
    per target j; plus ``"params"``: the predictor, its classifier, the sizes,
    the test and pool sizes and the seed.
    """
    mu_train, y_train = check_pair(mu_train, y_train, mu_name="mu_train", factors_name="y_train")
    mu_test, y_test = check_pair(mu_test, y_test, mu_name="mu_test", factors_name="y_test")
    if mu_test.shape[1] != mu_train.shape[1]:
        raise ValueError(f"mu_test has {mu_test.shape[1]} latents but mu_train has {mu_train.shape[1]}; "
                         "they must match")
    if y_test.shape[1] != y_train.shape[1]:
        raise ValueError(f"y_test has {y_test.shape[1]} targets but y_train has {y_train.shape[1]}; they must match")
    _check_targets(y_train, "y_train")
    _check_targets(y_test, "y_test")
    predictor = _check_predictor(predictor)
    sizes = _check_sizes(num_train, len(mu_train), predictor)

    scores: dict = {}
    for size in sizes:
        idx = np.random.default_rng((int(seed), size)).permutation(len(mu_train))[:size]
        acc_train, acc_test = downstream_accuracies(mu_train[idx], y_train[idx], mu_test, y_test,
                                                    predictor=predictor, seed=seed)
        scores[f"{size}:mean_train_accuracy"] = float(np.mean(acc_train))
        scores[f"{size}:mean_test_accuracy"] = float(np.mean(acc_test))
        scores[f"{size}:min_train_accuracy"] = float(np.min(acc_train))
        scores[f"{size}:min_test_accuracy"] = float(np.min(acc_test))
        for j in range(len(acc_train)):
            scores[f"{size}:train_accuracy_factor_{j}"] = float(acc_train[j])
            scores[f"{size}:test_accuracy_factor_{j}"] = float(acc_test[j])
    scores["params"] = {
        "predictor": predictor,
        "classifier": PREDICTORS[predictor],
        "num_train": list(sizes),
        "num_test": int(len(mu_test)),
        "num_train_available": int(len(mu_train)),
        "num_targets": int(y_train.shape[1]),
        "sampling": "each size drawn without replacement by numpy.random.default_rng((seed, size))",
        "seed": int(seed),
    }
    return scores
