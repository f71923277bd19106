"""Weak labels from any factors: a small spec language (paper §3, §4.1; issue 22, item 2).

The paper derives its weak labels from the polar coordinates of the blob
centre: p equal-width bins of the angle over [0, π/2] and of the distance
over [0, 64·√2] (§4.1, CONTRIBUTING.md "Conventions").  This module generalises that rule to any
factors of any data set.  A spec is a comma-separated list of terms, one weak
label each::

    "angle(posX,posY):3, distance(posX,posY):3"

Terms (``a``, ``b``, ``f`` are factor names; ``p >= 2`` the number of classes):

==============================  =======================================  ==========================
term                            continuous coordinate                    its range
==============================  =======================================  ==========================
``bins(f):p``                   ``f``                                    ``[lo_f, hi_f]``
``angle(a,b):p``                ``atan2(b - lo_b, a - lo_a)``            ``[0, π/2]``
``distance(a,b):p``             ``hypot(a - lo_a, b - lo_b)``            ``[0, hypot(w_a, w_b)]``
``angle(a,b,origin=centre):p``  ``atan2(b - m_b, a - m_a) mod 2π``       ``[0, 2π]``
``distance(a,b,origin=centre)`` ``hypot(a - m_a, b - m_b)``              ``[0, hypot(w_a, w_b)/2]``
``sum(a,b):p``                  ``(a - lo_a) + (b - lo_b)``              ``[0, w_a + w_b]``
``diff(a,b):p``                 ``(a - lo_a) - (b - lo_b)``              ``[-w_b, w_a]``
==============================  =======================================  ==========================

Each factor ``f`` has a known range ``[lo_f, hi_f]`` (width ``w_f = hi_f - lo_f``,
midpoint ``m_f``): the polar terms are taken about the corner where both
factors are smallest (the paper's Blobs convention) or, with
``origin=centre``, about the middle of the two ranges; ``sum``/``diff`` are the
axes of a system rotated by 45° (unscaled by √2, which no bin notices).
The ranges are those of the *factor space*, not of the sample, so a subset
gets the same bin edges as the whole set:

* a benchmark's factors are class indices ``0 … n_f - 1``: pass
  ``factor_sizes`` (range ``[0, n_f - 1]``);
* Blobs' factors are pixel rows/columns ``0 … 63`` on a canvas of size 64,
  whose range is the canvas ``[0, 64]`` (so distance runs over
  ``[0, 64·√2]`` as in the paper): pass ``factor_ranges=((0, 64), (0, 64))``
  (what :func:`weak_labels` does for Blobs);
* neither: each factor's observed ``[min, max]`` in ``factors``.

Each label is p equal-width bins of its coordinate over the coordinate's range,
with Blobs' edges (:func:`welavae.data.blobs.label_edges`): bin k holds
``k·step < v - lo <= (k+1)·step``, and ``v = lo`` belongs to bin 0.  On Blobs,
``angle(c1,c2):p, distance(c1,c2):p`` therefore gives exactly
``welavae.data.weak_labels(factors, p)``.  The coordinates themselves are
returned too: they are the data set's *label coordinates*, against which a
representation is evaluated.

In Python a term can also be a :class:`CustomTerm`: any function of the
factors, binned the same way.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .blobs import _EDGE_RTOL, _bin
from .blobs import weak_labels as _blobs_weak_labels

__all__ = [
    "Term",
    "CustomTerm",
    "WeakLabels",
    "parse_spec",
    "weak_labels_from_spec",
    "weak_labels",
    "bin_coordinate",
    "label_pair",
    "LabelPair",
    "COORDINATES",
]

ORIGINS = ("corner", "centre")
_ORIGIN_SPELLINGS = {"corner": "corner", "centre": "centre", "center": "centre"}


# --------------------------------------------------------- the coordinates ---
# Each coordinate: (a, b) factor columns (N,) with their ranges → (values (N,), lo, hi).
# ``x`` is a _Factor: values, lo, hi.


@dataclass(frozen=True)
class _Factor:
    values: np.ndarray  # (N,) float64
    lo: float
    hi: float

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def about(self, origin: str) -> np.ndarray:
        return self.values - (self.lo if origin == "corner" else (self.lo + self.hi) / 2)


def _bins(f: _Factor, origin: str):
    return f.values, f.lo, f.hi


def _angle(a: _Factor, b: _Factor, origin: str):
    phi = np.arctan2(b.about(origin), a.about(origin))
    if origin == "corner":
        return phi, 0.0, math.pi / 2
    # About the centre the angle covers the full turn; [0, 2π) keeps 0 = the a axis in bin 0.
    return np.mod(phi, 2 * math.pi), 0.0, 2 * math.pi


def _distance(a: _Factor, b: _Factor, origin: str):
    d = np.hypot(a.about(origin), b.about(origin))
    far = math.hypot(a.width, b.width)
    return d, 0.0, far if origin == "corner" else far / 2


def _sum(a: _Factor, b: _Factor, origin: str):
    return a.about("corner") + b.about("corner"), 0.0, a.width + b.width


def _diff(a: _Factor, b: _Factor, origin: str):
    return a.about("corner") - b.about("corner"), -b.width, a.width


#: kind → (number of factors, accepts origin=, coordinate function).  One table: a new
#: coordinate is one entry here.
COORDINATES: dict[str, tuple[int, bool, Callable]] = {
    "bins": (1, False, _bins),
    "angle": (2, True, _angle),
    "distance": (2, True, _distance),
    "sum": (2, False, _sum),
    "diff": (2, False, _diff),
}

_VALID_FORMS = (
    "bins(f):p, angle(a,b):p, distance(a,b):p, sum(a,b):p, diff(a,b):p "
    "(angle and distance also take origin=centre, e.g. angle(a,b,origin=centre):p; p >= 2)"
)


# -------------------------------------------------------------- the terms ---


@dataclass(frozen=True)
class Term:
    """One parsed spec term: ``kind(factors…[, origin=…]):p``."""

    kind: str
    factors: tuple[str, ...]
    p: int
    origin: str = "corner"

    @property
    def name(self) -> str:
        """The label's name, e.g. ``angle(posX,posY)`` or ``angle(posX,posY,origin=centre)``."""
        args = list(self.factors) + (["origin=centre"] if self.origin == "centre" else [])
        return f"{self.kind}({','.join(args)})"

    def __str__(self) -> str:
        return f"{self.name}:{self.p}"

    def __post_init__(self):
        if isinstance(self.p, bool) or not isinstance(self.p, (int, np.integer)) or self.p < 2:
            raise ValueError(f"a weak label needs p >= 2 classes, got {self.p!r} in the weak-label term {self}")
        # angle(a,a) is π/4 everywhere and diff(a,a) is 0: one class; sum(a,a) and distance(a,a) are bins(a)
        # rescaled.  A two-factor coordinate is a system of a *pair*.
        if len(self.factors) == 2 and self.factors[0] == self.factors[1]:
            raise ValueError(f"the weak-label term {self} names the factor {self.factors[0]!r} twice; {self.kind} "
                             f"takes two different factors (for one factor use bins({self.factors[0]}):p)")


@dataclass(frozen=True)
class CustomTerm:
    """A weak label from any function of the factors.

    fn: factors (N, F) float64 → (N,) float, the continuous coordinate.
    p: number of classes (equal-width bins, Blobs' edges).
    range: (lo, hi) of the coordinate; None = its observed min and max.
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    p: int
    range: tuple[float, float] | None = None


class WeakLabels(NamedTuple):
    """labels (N, m) int64 in 0…p_j−1; names (m,); dims (p_1…p_m);
    coordinates (N, m) float64, the continuous values the labels bin."""

    labels: np.ndarray
    names: tuple[str, ...]
    dims: tuple[int, ...]
    coordinates: np.ndarray


def _split_top_level(spec: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(spec):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in the weak-label spec {spec!r}; valid terms: {_VALID_FORMS}")
        elif ch == "," and depth == 0:
            parts.append(spec[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '(' in the weak-label spec {spec!r}; valid terms: {_VALID_FORMS}")
    parts.append(spec[start:])
    return parts


_TERM = re.compile(r"([A-Za-z_]\w*)\(([^()]*)\):(\d+)")
_NAME = re.compile(r"[A-Za-z_][\w.\-]*")


def _parse_term(token: str) -> Term:
    t = re.sub(r"\s+", "", token)
    m = _TERM.fullmatch(t)
    if not m:
        raise ValueError(f"cannot read the weak-label term {token.strip()!r}; valid terms: {_VALID_FORMS}")
    kind, args, p = m.group(1), m.group(2), int(m.group(3))
    if kind not in COORDINATES:
        raise ValueError(f"unknown coordinate {kind!r} in the weak-label term {t!r}; valid terms: {_VALID_FORMS}")
    arity, takes_origin, _ = COORDINATES[kind]
    names, origin = [], "corner"
    for arg in args.split(",") if args else []:
        key, eq, value = arg.partition("=")
        if eq:
            if key != "origin" or not takes_origin:
                raise ValueError(f"unknown option {arg!r} in the weak-label term {t!r}; valid terms: {_VALID_FORMS}")
            if value not in _ORIGIN_SPELLINGS:
                raise ValueError(f"origin must be corner or centre, got {value!r} in the weak-label term {t!r}")
            origin = _ORIGIN_SPELLINGS[value]
        elif _NAME.fullmatch(arg):
            names.append(arg)
        else:
            raise ValueError(f"{arg!r} in the weak-label term {t!r} is not a factor name; valid terms: {_VALID_FORMS}")
    if len(names) != arity:
        raise ValueError(
            f"{kind} takes {arity} factor{'s' * (arity > 1)}, got {len(names)} in the weak-label term {t!r}; "
            f"valid terms: {_VALID_FORMS}"
        )
    return Term(kind, tuple(names), p, origin)


def parse_spec(spec: str) -> tuple[Term, ...]:
    """``"angle(posX,posY):3, distance(posX,posY):3"`` → (Term, Term).  Whitespace is ignored."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"the weak-label spec must be a non-empty string of terms like {_VALID_FORMS}, got {spec!r}")
    return tuple(_parse_term(tok) for tok in _split_top_level(spec))


def _terms(spec) -> tuple[Term | CustomTerm, ...]:
    if isinstance(spec, str):
        return parse_spec(spec)
    if isinstance(spec, (Term, CustomTerm)):
        return (spec,)
    if callable(spec):
        raise ValueError("a function as a weak label needs a name and p: wrap it as CustomTerm(name, fn, p)")
    if isinstance(spec, bool) or not isinstance(spec, (list, tuple)):
        raise ValueError(
            f"a weak-label spec is a string like {'angle(a,b):3, distance(a,b):3'!r}, a Term/CustomTerm "
            f"or a list of them, got {type(spec).__name__}"
        )
    out: list[Term | CustomTerm] = []
    for item in spec:
        out.extend(_terms(item))
    if not out:
        raise ValueError("the weak-label spec has no terms")
    return tuple(out)


class LabelPair(NamedTuple):
    """The two factors a spec's labels describe and the coordinate system they take on them:
    ``polar`` (angle/distance), ``rotated`` (sum/diff) or ``cartesian`` (bins of each)."""

    factors: tuple[str, str]
    system: str
    origin: str = "corner"


_SYSTEM_OF = {"angle": "polar", "distance": "polar", "sum": "rotated", "diff": "rotated"}


def label_pair(spec) -> LabelPair | None:
    """The labelled pair of a spec: the factors of its first two-factor term and that term's
    system, else the first two distinct factors of its ``bins`` terms (Cartesian); None when the
    spec names fewer than two factors this way (custom terms name none)."""
    terms = [t for t in _terms(spec) if isinstance(t, Term)]
    for t in terms:
        if len(t.factors) == 2:
            return LabelPair(t.factors, _SYSTEM_OF[t.kind], t.origin)
    binned = list(dict.fromkeys(t.factors[0] for t in terms if t.kind == "bins"))
    return LabelPair((binned[0], binned[1]), "cartesian") if len(binned) >= 2 else None


# ------------------------------------------------------------ evaluation ---


def _resolve_ranges(f: np.ndarray, factor_sizes, factor_ranges) -> list[tuple[float, float]]:
    n_f = f.shape[1]
    if factor_sizes is not None and factor_ranges is not None:
        raise ValueError("give factor_sizes (class indices 0…n−1) or factor_ranges, not both")
    if factor_sizes is not None:
        ranges = [(0.0, float(n) - 1) for n in factor_sizes]
    elif factor_ranges is not None:
        ranges = [(float(lo), float(hi)) for lo, hi in factor_ranges]
    else:
        ranges = [(float(f[:, j].min()), float(f[:, j].max())) for j in range(n_f)] if len(f) else [(0.0, 0.0)] * n_f
    if len(ranges) != n_f:
        raise ValueError(f"factor ranges: {len(ranges)} given for {n_f} factors")
    for j, (lo, hi) in enumerate(ranges):
        if not hi >= lo:
            raise ValueError(f"factor {j} has the range [{lo:g}, {hi:g}]; the upper end must not be below the lower")
        col = f[:, j]
        if len(col) and (col.min() < lo or col.max() > hi):
            raise ValueError(
                f"factor {j} takes values in [{col.min():g}, {col.max():g}], outside its range [{lo:g}, {hi:g}]"
            )
    return ranges


def bin_coordinate(values, lo: float, hi: float, p: int, *, name: str = "coordinate") -> np.ndarray:
    """(N,) values in [lo, hi] → (N,) int64 bins 0…p−1 of width (hi−lo)/p, Blobs' edge rule."""
    v = np.asarray(values, dtype=np.float64) - lo
    width = hi - lo
    if not np.isfinite(v).all():
        raise ValueError(f"the weak label {name} has NaN or inf coordinates")
    if len(v) and (v.min() < -abs(width) * _EDGE_RTOL - 1e-12 or v.max() > width * (1 + _EDGE_RTOL) + 1e-12):
        raise ValueError(
            f"the weak label {name} has coordinates in [{v.min() + lo:g}, {v.max() + lo:g}], outside its range "
            f"[{lo:g}, {hi:g}]"
        )
    if width <= 0:
        raise ValueError(f"the weak label {name} has an empty range [{lo:g}, {hi:g}]; it cannot make {p} classes")
    edges = np.arange(1, p) * width / p
    return _bin(v, edges)


#: The largest factor grid (points) whose coordinate values are enumerated to bound p; a larger grid
#: is bounded by the values in the data instead (the enumeration must cost no more than the data).
_GRID_POINTS = 1 << 16


def _check_classes(term, values: np.ndarray, columns: dict, names: tuple, factor_sizes) -> None:
    """Refuse a term whose p exceeds the distinct values its coordinate takes, before anything of size p exists.

    Equal-width bins of a coordinate with k distinct values leave at least p − k classes empty, so
    p > k is a mistake (``bins(posX):1000000`` for posX's 32 classes), and it is the only way a
    spec's memory (the p − 1 bin edges, the label head's p outputs) could outgrow its data.  The
    values counted are those of the factor grid where the factors are class indices
    (``factor_sizes``: ``bins`` of a factor with n classes allows p ≤ n, ``sum``/``diff`` of n_a
    and n_b classes p ≤ n_a + n_b − 1), so a subset allows the p of its whole set; otherwise (Blobs'
    canvas, observed ranges, a :class:`CustomTerm`) those the data take.
    """
    where = "in the data"
    if isinstance(term, Term) and factor_sizes is not None:
        sizes = [int(factor_sizes[names.index(n)]) for n in term.factors]
        if math.prod(sizes) <= max(len(values), _GRID_POINTS):
            grid = np.meshgrid(*(np.arange(s, dtype=np.float64) for s in sizes), indexing="ij")
            lattice = [_Factor(g.ravel(), columns[n].lo, columns[n].hi) for g, n in zip(grid, term.factors)]
            values, where = COORDINATES[term.kind][2](*lattice, term.origin)[0], "on the factor grid"
    k = len(np.unique(values))
    if term.p > k:
        text = str(term) if isinstance(term, Term) else f"{term.name}:{term.p}"
        raise ValueError(f"the weak-label term {text} asks for {term.p} classes but its coordinate takes only {k} "
                         f"distinct value{'s' * (k != 1)} {where}; choose p <= {k}")


def weak_labels_from_spec(
    factors, spec, factor_names: Sequence[str], *, factor_sizes=None, factor_ranges=None
) -> WeakLabels:
    """Weak labels (N, m) from factors (N, F) by a spec (see the module docstring).

    factors: (N, F) numbers (class indices of a benchmark, Blobs' pixel centres).
    spec: a spec string, a Term/CustomTerm, or a sequence of these.
    factor_names: (F,) names the spec refers to.
    factor_sizes: (F,) class counts, range of factor j = [0, n_j − 1]; or
    factor_ranges: (F,) (lo, hi) pairs; neither = the observed [min, max].
    Returns WeakLabels(labels (N, m) int64, names, dims, coordinates (N, m) float64).
    """
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"factors must have shape (N, F), got {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("factors contain NaN or inf")
    names = tuple(str(n) for n in factor_names)
    if len(names) != f.shape[1]:
        raise ValueError(f"{len(names)} factor names given for {f.shape[1]} factor columns")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise ValueError(f"factor_names names {twice!r} twice; each factor column needs its own name")
    ranges = _resolve_ranges(f, factor_sizes, factor_ranges)
    columns = {n: _Factor(f[:, j], *ranges[j]) for j, n in enumerate(names)}
    terms = _terms(spec)
    label_names = [t.name for t in terms]
    dup = next((n for i, n in enumerate(label_names) if n in label_names[:i]), None)
    if dup is not None:
        raise ValueError(f"the weak label {dup} appears twice in the spec")
    labels, coords, dims = [], [], []
    for term in terms:
        if isinstance(term, CustomTerm):
            if isinstance(term.p, bool) or not isinstance(term.p, (int, np.integer)) or term.p < 2:
                raise ValueError(f"the weak label {term.name} needs an integer p >= 2, got {term.p!r}")
            values = np.asarray(term.fn(f), dtype=np.float64)
            if values.shape != (len(f),):
                raise ValueError(f"the weak label {term.name}: its function returned shape {values.shape}, "
                                 f"not ({len(f)},)")
            if term.range is not None:
                lo, hi = map(float, term.range)
            elif len(values) and np.isfinite(values).all():
                lo, hi = float(values.min()), float(values.max())
            else:
                lo, hi = 0.0, 0.0
        else:
            missing = [n for n in term.factors if n not in columns]
            if missing:
                raise ValueError(
                    f"factor {missing[0]!r} in the weak-label term {term} is not one of {', '.join(names)}"
                )
            _, _, fn = COORDINATES[term.kind]
            values, lo, hi = fn(*(columns[n] for n in term.factors), term.origin)
        _check_classes(term, values, columns, names, factor_sizes)
        labels.append(bin_coordinate(values, lo, hi, term.p, name=term.name))
        coords.append(values)
        dims.append(int(term.p))
    return WeakLabels(
        labels=np.stack(labels, axis=1).astype(np.int64),
        names=tuple(label_names),
        dims=tuple(dims),
        coordinates=np.stack(coords, axis=1).astype(np.float64),
    )


def weak_labels(factors, spec, *, factor_names=None, factor_sizes=None, factor_ranges=None, size: int = 64):
    """(N, m) int64 weak labels: Blobs' ``weak_labels(factors, p)`` when ``spec`` is an int p,
    else the labels of a spec (string, Term/CustomTerm, or a sequence of them).

    With a spec and no names/ranges, the factors are Blobs' (c1, c2) on a ``size`` canvas:
    names ("c1", "c2"), range [0, size] each — so ``"angle(c1,c2):p, distance(c1,c2):p"``
    equals ``weak_labels(factors, p)``.
    """
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return _blobs_weak_labels(factors, spec, size=size)
    if factor_names is None:
        factor_names = ("c1", "c2")
        if factor_sizes is None and factor_ranges is None:
            factor_ranges = ((0, size), (0, size))
    return weak_labels_from_spec(
        factors, spec, factor_names, factor_sizes=factor_sizes, factor_ranges=factor_ranges
    ).labels
