"""What evaluation knows of a data set's true factors: :class:`GroundTruth`, one per run.

Evaluation (:mod:`welavae.evaluate`) scores a representation in two ways, and
both need to know what the data's true factors are:

* the **coordinate MSE** (paper eqs. 5–7) of one *pair* of factors — Blobs'
  centre (c1, c2); a benchmark's labelled pair (``posX, posY`` for
  ``angle(posX,posY):3, distance(posX,posY):3``) — in Cartesian and polar
  coordinates (and the rotated ``sum``/``diff`` system when the labels use it),
  with the error always measured in the pair's own plane
  (:func:`welavae.metrics.pair_mse`);
* disentanglement_lib's **standard metrics** against sets of factors: on Blobs
  the Cartesian (c1, c2) and the polar (φ, d) binned 20; on a benchmark the true
  factors (every factor that varies, as class indices) and the true factors
  with the labelled ones replaced by the labels' continuous coordinates (the
  spec's *label coordinates*, binned 20) — e.g. (shape, scale, orientation,
  posX, posY) and (shape, scale, orientation, φ, d).

:func:`ground_truth` builds it from a run's config and its ``factors.npy``,
reading no images.  A benchmark run without a weak-label spec (β-TCVAE) is
scored on its data set's position pair (:attr:`Benchmark.position`) as if its
labels were ``angle``/``distance`` of that pair, so every model of one data set
gets the same columns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data.blobs import polar_factors
from .data.published import benchmark, small_grid
from .data.spec import label_pair, parse_spec, weak_labels_from_spec
from .metrics import CoordinateMSE, cartesian_mse, pair_mse, polar_mse, standard_metrics

__all__ = ["GroundTruth", "ground_truth", "blobs_truth", "benchmark_truth"]


@dataclass(frozen=True)
class GroundTruth:
    """The true factors of N samples, as evaluation uses them.

    pair: (N, 2) float64, the scored pair measured from the corner where both are smallest
    (Blobs: (c1, c2)), or None (nothing to score the coordinate MSE on).
    pair_names, widths: the pair's factor names and ranges (w_a, w_b).
    systems: the coordinate systems reported (``cartesian``, ``polar`` and, for sum/diff
    labels, ``rotated``); task: the labels' system (a labelled model's best seed is its lowest
    MSE there); origin: the pole of the polar system (``corner`` or ``centre``).
    factor_sets: name → (factors (N, F), names (F,), continuous columns) for the standard metrics.
    groups: (N,) split groups of the standard metrics (Blobs: the variants of one position), or None.
    grid: (n_a, n_b) when the pair holds class indices 0 … n − 1 (heat maps by cell), else None.
    paper: Blobs' eqs. 5–7 with the paper's constants (range 64, d ∈ [0, 90.5]).
    """
    pair: np.ndarray | None
    pair_names: tuple[str, str] = ("c1", "c2")
    widths: tuple[float, float] = (64.0, 64.0)
    systems: tuple[str, ...] = ("cartesian", "polar")
    task: str = "polar"
    origin: str = "corner"
    factor_sets: dict = field(default_factory=dict)
    groups: np.ndarray | None = None
    grid: tuple[int, int] | None = None
    paper: bool = False

    def mse(self, mu, system: str) -> CoordinateMSE:
        """The coordinate MSE of (N, K) means in ``system``."""
        if self.pair is None:
            raise ValueError("this data set has no factor pair to score the coordinate MSE on")
        if self.paper and (system == "cartesian" or (system == "polar" and self.origin == "corner")):
            return cartesian_mse(mu, self.pair) if system == "cartesian" else polar_mse(mu, self.pair)
        return pair_mse(mu, self.pair, widths=self.widths, system=system,
                        origin=self.origin if system == "polar" else "corner")

    def standard(self, mu) -> dict:
        """disentanglement_lib's metrics of (N, K) means against each factor set."""
        return {name: dict(standard_metrics(mu, f, continuous=cont, groups=self.groups), factors=list(names))
                for name, (f, names, cont) in self.factor_sets.items()}

    def heatmaps(self, mu) -> np.ndarray | None:
        """(K, n_a, n_b) mean of each latent per cell of the pair (NaN where no sample falls), or None."""
        if self.grid is None or self.pair is None:
            return None
        mu = np.asarray(mu, dtype=np.float64)
        a, b = (np.rint(self.pair[:, j]).astype(np.int64) for j in (0, 1))
        cell = a * self.grid[1] + b
        n_cells = self.grid[0] * self.grid[1]
        sums = np.zeros((n_cells, mu.shape[1]))
        np.add.at(sums, cell, mu)
        count = np.bincount(cell, minlength=n_cells).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / count[:, None]
        return means.T.reshape(mu.shape[1], *self.grid)


def blobs_truth(factors, *, size: int = 64, spec=None) -> GroundTruth:
    """Blobs' (c1, c2): the paper's eqs. 5–7; the standard metrics against (c1, c2) and the polar (φ, d)
    binned 20, the variants of one position one split group.  With a weak-label ``spec`` over (c1, c2)
    its system is the task (``rotated`` for sum/diff, also reported; a polar system about the centre
    scored by :func:`pair_mse` on the canvas [0, size])."""
    factors = np.asarray(factors, dtype=np.float64)
    groups = np.unique(factors, axis=0, return_inverse=True)[1].reshape(-1)
    lp = label_pair(spec) if spec is not None else None
    task = dict(task=lp.system, origin=lp.origin,
                systems=("cartesian", "polar") + (("rotated",) if lp.system == "rotated" else ())) if lp else {}
    return GroundTruth(pair=factors, paper=True, groups=groups, widths=(float(size), float(size)), **task,
                       factor_sets={"cartesian": (factors, ("c1", "c2"), ()),
                                    "polar": (polar_factors(factors, size=size), ("phi", "d"), (0, 1))})


def benchmark_truth(factors, factor_names, factor_sizes, spec=None, position=None) -> GroundTruth:
    """A benchmark's class-index factors (N, F) with its weak-label ``spec`` (a string) or, without
    one, its ``position`` pair scored as if labelled by angle and distance.

    Factors of one class (dSprites' colour) are left out of the standard metrics.
    """
    factors = np.asarray(factors)
    names, sizes = tuple(factor_names), tuple(int(s) for s in factor_sizes)
    if spec is None and position is not None:
        a, b = position
        spec = f"angle({a},{b}):2, distance({a},{b}):2"
    varying = [j for j, n in enumerate(sizes) if n > 1]
    sets = {"factors": (factors[:, varying].astype(np.int64), tuple(names[j] for j in varying), ())}
    if spec is None:
        return GroundTruth(pair=None, factor_sets=sets)
    wl = weak_labels_from_spec(factors, spec, names, factor_sizes=sizes)
    used = {n for t in parse_spec(spec) for n in t.factors}
    kept = [j for j in varying if names[j] not in used]
    label_set = np.concatenate([factors[:, kept].astype(np.float64), wl.coordinates], axis=1)
    sets["label_coordinates"] = (label_set, tuple(names[j] for j in kept) + wl.names,
                                 tuple(range(len(kept), label_set.shape[1])))
    lp = label_pair(spec)
    if lp is None:
        return GroundTruth(pair=None, factor_sets=sets)
    ja, jb = (names.index(n) for n in lp.factors)
    pair = np.stack([factors[:, ja], factors[:, jb]], axis=1).astype(np.float64)  # class indices: lo = 0
    systems = ("cartesian", "polar") + (("rotated",) if lp.system == "rotated" else ())
    return GroundTruth(pair=pair, pair_names=lp.factors, widths=(sizes[ja] - 1.0, sizes[jb] - 1.0),
                       systems=systems, task=lp.system, origin=lp.origin, factor_sets=sets,
                       grid=(sizes[ja], sizes[jb]))


def ground_truth(config, factors) -> GroundTruth | None:
    """The :class:`GroundTruth` of a run's ``factors.npy`` given its :class:`~welavae.config.RunConfig`
    (or None: no factors, or factors that are not Blobs' (N, 2) centres on other data)."""
    if factors is None:
        return None
    d = config.data
    if d.source == "benchmark":

        entry = small_grid(d.dataset, d.grid) if d.grid is not None else benchmark(d.dataset)
        return benchmark_truth(factors, entry.factor_names, entry.factor_sizes, d.weak_labels, entry.position)
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != 2:
        return None
    return blobs_truth(factors, size=getattr(d, "size", 64) or 64,
                       spec=d.weak_labels if d.source == "blobs" else None)

