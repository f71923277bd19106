"""Figures of the WeLa-VAE paper, as pure functions: arrays in, Figure out.

- :func:`sample_grid` — Blobs samples (paper Figure 3a, §4.1).
- :func:`label_regions` — the canvas divided into ``p`` angle and ``p``
  distance areas for the weak labels (Figure 3b, §4.1).
- :func:`latent_figure` — originals, reconstructions, latent traversals over
  [-3, +3] and positional heat maps of the mean activation of each channel
  (Figures 1, 4 and 5; the qualitative evaluation of §4.2).  The heat maps use
  the ``jet`` colour map on a fixed [-3, +3] scale, so dark blue, green and
  dark red mean -3, 0 and +3, as in the Figure 1 caption.
- :func:`latent_scatter` — a 2-D representation coloured by the true polar
  factors, the question §4.2 asks of a WeLa-VAE model.
- :func:`mse_distributions` — per-seed polar and Cartesian MSE (eqs. 5–7) of
  every model: the spread behind Table 1's lowest / mean columns.

Two numpy helpers prepare their inputs: :func:`heatmaps_from_mu` (encoder
means in the data set's order → positional heat maps) and
:func:`traversal_grid` (a decoder → the traversal images).

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas, never
through pyplot, so nothing here touches global matplotlib state or the user's
backend; :func:`save_figure` writes a PNG atomically.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..data.blobs import polar_factors, weak_labels
from ..io import atomic_write

__all__ = [
    "sample_grid",
    "label_maps",
    "label_regions",
    "latent_figure",
    "latent_scatter",
    "mse_distributions",
    "heatmaps_from_mu",
    "traversal_grid",
    "save_figure",
]

#: Heat-map colour map: the paper's "dark blue, green, dark red" for -3, 0, +3.
HEATMAP_CMAP = "jet"
_GOLDEN = (math.sqrt(5) - 1) / 2  # low-discrepancy jitter, no RNG needed


# ------------------------------------------------------------- helpers ---


def _new_figure(width: float, height: float, dpi: float = 100) -> Figure:
    """A Figure with its own Agg canvas (independent of pyplot and the backend)."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _as_images(x, name: str, *, ndim: int = 3) -> np.ndarray:
    """Grayscale (…, H, W) with ``ndim`` axes, or colour (…, H, W, C) with one more, C in 1, 3 (RGB)."""
    a = np.asarray(x, dtype=np.float64)
    colour = a.ndim == ndim + 1 and a.shape[-1] in (1, 3)
    if a.ndim != ndim and not colour:
        dims = {3: "(n, H, W)", 4: "(K, T, H, W)"}[ndim]
        raise ValueError(f"{name} must have shape {dims} or {dims[:-1]}, C) with C = 1 or 3, got {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    return a[..., 0] if colour and a.shape[-1] == 1 else a


def _show(ax, img) -> None:
    """One image in [0, 1]: (H, W) in gray, (H, W, 3) in colour."""
    if img.ndim == 3:
        ax.imshow(np.clip(img, 0.0, 1.0), interpolation="nearest")
    else:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")


def _clean_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def save_figure(fig: Figure, path, *, dpi: float | None = None) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically; create parent directories.

    The image goes to a temporary file in the target directory first and is
    then moved over ``path`` with ``os.replace``, so a reader never sees a
    half-written PNG.  Returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure writes PNG files; {str(path)!r} should end in .png")
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi if dpi is not None else "figure"))


# ------------------------------------------------------------- samples ---


def sample_grid(images, *, rows: int = 4, cols: int = 8, titles: Sequence[str] | None = None) -> Figure:
    """A grid of Blobs images (paper Figure 3a).

    images: (n, H, W) grayscale or (n, H, W, 3) colour in [0, 1].  The first ``min(n, rows·cols)``
    images are drawn row by row, one axes each, without ticks.
    titles: optional, one string per image (length n).
    """
    imgs = _as_images(images, "images")
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, got rows={rows}, cols={cols}")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"titles must have one entry per image ({len(imgs)}), got {len(titles)}")
    shown = min(len(imgs), rows * cols)
    rows = math.ceil(shown / cols)
    cols = min(cols, shown)
    # Manual layout in inches so the square cells sit at a fixed, small gap.
    cell, gap, margin = 1.0, 0.05, 0.05
    title_h = 0.2 if titles is not None else 0.0
    width = 2 * margin + cols * cell + (cols - 1) * gap
    height = 2 * margin + rows * (cell + title_h) + (rows - 1) * gap
    fig = _new_figure(width, height)
    for i in range(shown):
        r, c = divmod(i, cols)
        x = margin + c * (cell + gap)
        y = margin + (r + 1) * (cell + title_h) + r * gap  # bottom edge, from the top
        ax = fig.add_axes([x / width, 1 - y / height, cell / width, cell / height])
        _show(ax, imgs[i])
        _clean_axes(ax)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8, pad=2)
    return fig


# ------------------------------------------------------------- labels ---


def label_maps(p: int, *, size: int = 64) -> np.ndarray:
    """(2, size, size) int64 weak labels of every blob centre on the canvas.

    ``[0, c1, c2]`` is the angle bin and ``[1, c1, c2]`` the distance bin of a
    blob centred at row c1, column c2 — exactly :func:`welavae.data.weak_labels`
    on the full grid of centres, laid out like an image.
    """
    c1, c2 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    centres = np.stack([c1.ravel(), c2.ravel()], axis=1).astype(np.float64)
    labels = weak_labels(centres, p, size=size)  # (size², 2)
    return labels.T.reshape(2, size, size)


def _label_anchor(kind: str, k: int, p: int, size: int) -> tuple[float, float]:
    """A (row, col) point inside bin k where its index is written.

    Angle bins are wedges: the mid-angle at 70% of the canvas is inside.
    Distance bins are quarter rings, whose centroid can fall in the hole, so
    use the mid-radius on the diagonal instead.
    """
    if kind == "angle":
        phi, r = (k + 0.5) * (math.pi / 2) / p, 0.7 * (size - 1)
    else:
        phi, r = math.pi / 4, (k + 0.5) * size * math.sqrt(2) / p
    return r * math.cos(phi), r * math.sin(phi)


def label_regions(p: int, *, size: int = 64, sample=None) -> Figure:
    """The canvas divided for the weak labels (paper Figure 3b).

    Two panels, drawn like images (origin top-left, row axis c1 downwards,
    column axis c2 to the right): each pixel (c1, c2) coloured by the angle
    label, then by the distance label, of a blob centred there, with each
    bin's index written inside it.  The drawn arrays are :func:`label_maps`
    (``ax.images[0].get_array()``).
    sample: optional (size, size) image in [0, 1] shown in a third panel.
    """
    maps = label_maps(p, size=size)
    cmap = ListedColormap(colormaps["viridis"](np.linspace(0.08, 0.92, p)))
    norm = BoundaryNorm(np.arange(-0.5, p), p)
    n_panels = 2 if sample is None else 3
    if sample is not None:
        sample = np.asarray(sample, dtype=np.float64)
        if sample.shape != (size, size):
            raise ValueError(f"sample must be one ({size}, {size}) image, got shape {sample.shape}")
    fig = _new_figure(3.3 * n_panels, 3.6)
    axes = fig.subplots(1, n_panels, gridspec_kw=dict(left=0.07, right=0.98, bottom=0.13,
                                                      top=0.9, wspace=0.28))
    ticks = [0, size // 2, size - 1]
    for ax, kind, m in zip(axes, ("angle", "distance"), maps):
        ax.imshow(m, cmap=cmap, norm=norm, origin="upper", interpolation="nearest")
        ax.set_title(f"{kind} label (p={p})", fontsize=11)
        for k in range(p):
            r, c = _label_anchor(kind, k, p, size)
            ax.text(c, r, str(k), ha="center", va="center", fontsize=10, color="white",
                    fontweight="bold",
                    path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])
    for ax in axes:
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.tick_params(labelsize=8, length=2)
        ax.set_xlabel("c2 (column)", fontsize=9)
        ax.set_ylabel("c1 (row)", fontsize=9, labelpad=1)
    if sample is not None:
        axes[2].imshow(sample, cmap="gray", vmin=0.0, vmax=1.0, origin="upper", interpolation="nearest")
        axes[2].set_title("sample", fontsize=11)
    return fig


# ------------------------------------------------------ latent figure ---


def latent_figure(
    originals,
    reconstructions,
    traversals,
    heatmaps,
    *,
    order: Sequence[int] | None = None,
    title: str | None = None,
    vlim: float = 3.0,
    limit: float = 3.0,
) -> Figure:
    """Traversals and positional heat maps of one model (paper Figures 1, 4, 5).

    originals, reconstructions: (n, H, W) in [0, 1], or (n, H, W, 3) in colour; rows 1 and 2.
    traversals: (K, T, H, W) (or (K, T, H, W, 3)) decoded images, one row per latent:
        ``traversals[k, 0]`` is the image before traversal (the base image),
        ``traversals[k, 1:]`` the decodings with latent k set to
        ``linspace(-limit, limit, T-1)`` (see :func:`traversal_grid`).
    heatmaps: (K, h, w) mean encoder activation of each latent by blob
        position (see :func:`heatmaps_from_mu`), drawn at the end of each
        traversal row with ``jet`` on the fixed scale [-vlim, vlim]; None
        (data without Blobs' grid of positions): no heat-map column.
    order: latents to show, top to bottom (the caller orders them, e.g. by
        mean posterior variance); default ``range(K)``.  Rows are labelled
        ``z{k}`` with the latent's index k.
    limit: only used to label the traversal columns.

    Axes: 2n image cells, (T+1) per shown latent, and one colour bar.
    """
    orig = _as_images(originals, "originals")
    rec = _as_images(reconstructions, "reconstructions")
    trav = _as_images(traversals, "traversals", ndim=4)
    heat = None if heatmaps is None else np.asarray(heatmaps, dtype=np.float64)
    if rec.shape != orig.shape:
        raise ValueError(f"reconstructions must match originals' shape {orig.shape}, got {rec.shape}")
    if trav.shape[2:] != orig.shape[1:]:
        raise ValueError(
            f"traversal images must be {orig.shape[1:]} like the originals, got {trav.shape[2:]}"
        )
    K, T = trav.shape[:2]
    if T < 2:
        raise ValueError(f"traversals need the base image plus >= 1 step, got T={T}")
    if heat is not None and (heat.ndim != 3 or heat.shape[0] != K):
        raise ValueError(f"heatmaps must have shape (K={K}, h, w), one per latent, got {heat.shape}")
    if not vlim > 0:
        raise ValueError(f"vlim must be > 0, got {vlim}")
    order = list(range(K)) if order is None else [int(k) for k in order]
    if not order or len(set(order)) != len(order) or not all(0 <= k < K for k in order):
        raise ValueError(f"order must list distinct latent indices in 0..{K - 1}, got {order}")

    # Manual layout in inches: small gaps inside a block, wider gaps between
    # blocks (base | traversal | heat map, and image rows | latent rows).
    n = len(orig)
    cell, gap, sep = 0.55, 0.03, 0.14
    left, right, bottom = 0.6, 0.55, 0.08
    top = 0.1 + (0.35 if title else 0.0)
    trav_cols_w = T * cell + (T - 1) * gap + sep  # base + sep + T-1 steps
    width = left + max(n * cell + (n - 1) * gap, trav_cols_w + (sep + cell if heat is not None else 0.0)) + right
    n_rows = 2 + len(order)
    height = top + n_rows * cell + (n_rows - 1) * gap + sep + bottom
    fig = _new_figure(width, height)

    def box(x_in: float, row: int, w: float = cell) -> list[float]:
        y_in = top + row * (cell + gap) + (sep if row >= 2 else 0.0)
        return [x_in / width, 1 - (y_in + cell) / height, w / width, cell / height]

    def col_x(j: int) -> float:  # j: traversal column (0 = base); T = heat map
        x = left + j * (cell + gap) + (sep if j >= 1 else 0.0)
        return x + (sep if j >= T else 0.0)

    def image(rect, img):
        ax = fig.add_axes(rect)
        _show(ax, img)
        _clean_axes(ax)
        return ax

    def row_label(ax, text):
        ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=10, labelpad=4)

    for row, (name, imgs) in enumerate((("orig.", orig), ("recon.", rec))):
        for i in range(n):
            ax = image(box(left + i * (cell + gap), row), imgs[i])
            if i == 0:
                row_label(ax, name)
    steps = np.linspace(-limit, limit, T - 1)
    heat_axes = []
    for r, k in enumerate(order):
        row = 2 + r
        for j in range(T):
            ax = image(box(col_x(j), row), trav[k, j])
            if j == 0:
                row_label(ax, f"z{k}")
            if r == 0:
                label = "base" if j == 0 else f"{steps[j - 1]:+.1f}"
                ax.set_title(label, fontsize=7, pad=2)
        if heat is None:
            continue
        hax = fig.add_axes(box(col_x(T), row))
        hax.imshow(heat[k], cmap=HEATMAP_CMAP, vmin=-vlim, vmax=vlim, interpolation="nearest")
        _clean_axes(hax)
        heat_axes.append(hax)
        if r == 0:
            hax.set_title("mean μ", fontsize=7, pad=2)
    if heat_axes:  # a colour bar beside the heat-map column, spanning the latent rows
        y0 = top + 2 * (cell + gap) + sep
        span = len(order) * cell + (len(order) - 1) * gap
        cax = fig.add_axes([(col_x(T) + cell + 0.08) / width, 1 - (y0 + span) / height,
                            0.1 / width, span / height])
        cb = fig.colorbar(heat_axes[0].images[0], cax=cax, ticks=[-vlim, 0, vlim])
        cb.ax.tick_params(labelsize=7, length=2)
    if title:
        fig.suptitle(title, y=1 - 0.08 / height, va="top", fontsize=11)
    return fig


# ---------------------------------------------------------- 2-D latents ---


def latent_scatter(mu2, factors, *, title: str | None = None, max_points: int = 20_000,
                   size: int = 64) -> Figure:
    """A 2-D representation coloured by the true angle φ and distance d.

    mu2: (N, 2) encoder means; factors: (N, 2) Cartesian (c1, c2), turned into
    (φ, d) by :func:`welavae.data.polar_factors`.  At most ``max_points``
    points are drawn: a fixed-seed random subset, in random order so no
    region of the canvas is painted last.  Axes: two scatters, two colour bars.
    """
    mu = np.asarray(mu2, dtype=np.float64)
    f = np.asarray(factors, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] != 2:
        raise ValueError(f"mu2 must have shape (N, 2), a 2-D representation, got {mu.shape}")
    if f.shape != mu.shape:
        raise ValueError(f"factors must have shape {mu.shape} to match mu2, got {f.shape}")
    polar = polar_factors(f, size=size)
    idx = np.random.default_rng(0).permutation(len(mu))[:max_points]
    fig = _new_figure(9.0, 4.0)
    axes = fig.subplots(1, 2, gridspec_kw=dict(left=0.08, right=0.95, bottom=0.13,
                                               top=0.86 if title else 0.9, wspace=0.35))
    panels = (
        ("angle φ", polar[:, 0], "plasma", (0.0, math.pi / 2)),
        ("distance d", polar[:, 1], "viridis", (0.0, size * math.sqrt(2))),
    )
    for ax, (name, values, cmap, (lo, hi)) in zip(axes, panels):
        sc = ax.scatter(mu[idx, 0], mu[idx, 1], c=values[idx], cmap=cmap,
                        norm=Normalize(lo, hi), s=3, linewidths=0, rasterized=True)
        cb = fig.colorbar(sc, ax=ax, fraction=0.05, pad=0.03)
        if name.startswith("angle"):
            cb.set_ticks([0, math.pi / 4, math.pi / 2], labels=["0", "π/4", "π/2"])
        cb.set_label(name, fontsize=9)
        cb.ax.tick_params(labelsize=8)
        ax.set_title(f"coloured by {name}", fontsize=10)
        ax.set_xlabel("μ0", fontsize=9)
        ax.set_ylabel("μ1", fontsize=9)
        ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ------------------------------------------------------------ MSE strips ---


def mse_distributions(per_model: Mapping[str, Mapping[str, np.ndarray]], *,
                      systems: Sequence[str] = ("polar", "cartesian")) -> Figure:
    """Per-seed coordinate MSE of every model, one strip plot per system.

    per_model: ``{model: {"polar": (S,), "cartesian": (S,)}}`` — the MSE of
    each seed (paper eqs. 5–7).  Each model is one x position; its seeds are
    points spread by a deterministic jitter, the median a black bar, on a log
    y axis.  Non-finite entries (diverged seeds) are not drawn; their count
    joins the tick label, e.g. ``"wela_p3\\n(2 diverged)"``.
    Axes: one per system.
    """
    if not isinstance(per_model, Mapping) or not per_model:
        raise ValueError("per_model must be a non-empty dict {model name: {system: (S,) MSE array}}")
    systems = tuple(systems)
    if not systems:
        raise ValueError("systems must name at least one coordinate system")
    data: dict[str, dict[str, np.ndarray]] = {}
    for model, entry in per_model.items():
        data[model] = {}
        for system in systems:
            if not isinstance(entry, Mapping) or system not in entry:
                raise ValueError(f"per_model[{model!r}] has no {system!r} entry (needs {list(systems)})")
            v = np.asarray(entry[system], dtype=np.float64)
            if v.ndim != 1:
                raise ValueError(f"per_model[{model!r}][{system!r}] must be a 1-D array of per-seed MSE, "
                                 f"got shape {v.shape}")
            if np.any(v[np.isfinite(v)] < 0):
                raise ValueError(f"per_model[{model!r}][{system!r}] has negative MSE values")
            data[model][system] = v
    names = list(data)
    width = max(4.0, 0.9 * len(names) + 1.5)
    fig = _new_figure(width, 3.2 * len(systems))
    axes = np.atleast_1d(fig.subplots(len(systems), 1, gridspec_kw=dict(
        left=0.75 / width, right=1 - 0.2 / width, bottom=0.08, top=0.95, hspace=0.45)))
    palette = colormaps["tab10"]
    for ax, system in zip(axes, systems):
        labels, finite_all = [], []
        for i, model in enumerate(names):
            v = data[model][system]
            ok = v[np.isfinite(v) & (v > 0)]
            diverged = int(np.sum(~np.isfinite(v)))
            jitter = ((np.arange(len(ok)) * _GOLDEN) % 1.0 - 0.5) * 0.5
            ax.scatter(i + jitter, ok, s=12, color=palette(i % 10), alpha=0.7, linewidths=0)
            if len(ok):
                ax.hlines(np.median(ok), i - 0.3, i + 0.3, color="black", linewidth=2, zorder=3)
                finite_all.append(ok)
            labels.append(model + (f"\n({diverged} diverged)" if diverged else ""))
        ax.set_xticks(range(len(names)), labels=labels, fontsize=8)
        ax.set_xlim(-0.6, len(names) - 0.4)
        if finite_all:
            ax.set_yscale("log")
            lo, hi = min(v.min() for v in finite_all) / 1.5, max(v.max() for v in finite_all) * 1.5
            if math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) < 1:
                # Under two labelled decades in view: widen to whole decades.
                lo, hi = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
            ax.set_ylim(lo, hi)
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no finite MSE (all seeds diverged)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, color="0.4")
        ax.set_ylabel(f"{system} MSE", fontsize=9)
        ax.set_title(f"{system} MSE per seed (bar: median)", fontsize=10)
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.tick_params(axis="y", labelsize=8)
    return fig


# ----------------------------------------------------------- numpy glue ---


def heatmaps_from_mu(mu, *, size: int = 64) -> np.ndarray:
    """(N, K) encoder means in the data set's order → (K, size, size) heat maps.

    Sample index is ``(c1·size + c2)·V + v``, so ``mu`` reshapes to
    ``(size, size, V, K)``; the mean over the V variants, moved to
    ``(K, size, size)``, is each latent's mean activation by position
    (row c1, column c2).
    """
    m = np.asarray(mu)
    if m.ndim != 2:
        raise ValueError(f"mu must have shape (N, K), got {m.shape}")
    n, k = m.shape
    if n == 0 or n % (size * size):
        raise ValueError(f"mu has N={n} rows; expected a positive multiple of size²={size * size} "
                         "(V variants per position, in the order (c1·size + c2)·V + v)")
    return m.reshape(size, size, n // (size * size), k).mean(axis=2).transpose(2, 0, 1)


def traversal_grid(decode: Callable[[np.ndarray], np.ndarray], base_z, *, steps: int = 10,
                   limit: float = 3.0) -> np.ndarray:
    """Decode latent traversals: (K, steps+1, H, W[, C]) images for :func:`latent_figure`.

    decode: (M, K) float32 latents → (M, H, W) or (M, H, W, C) images (called once).
    base_z: (K,) the base latent.  Column 0 of every row is ``decode(base_z)``;
    column 1 + t of row k decodes ``base_z`` with entry k set to
    ``linspace(-limit, limit, steps)[t]``.
    """
    z0 = np.asarray(base_z, dtype=np.float32)
    if z0.ndim != 1 or z0.size == 0:
        raise ValueError(f"base_z must be one latent vector of shape (K,), got {z0.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    K = z0.size
    values = np.linspace(-limit, limit, steps, dtype=np.float32)
    z = np.repeat(z0[None, :], 1 + K * steps, axis=0)  # (1 + K·steps, K)
    for k in range(K):
        z[1 + k * steps : 1 + (k + 1) * steps, k] = values
    imgs = np.asarray(decode(z))
    if imgs.ndim not in (3, 4) or imgs.shape[0] != len(z):
        raise ValueError(f"decode must map ({len(z)}, {K}) latents to ({len(z)}, H, W[, C]) images, "
                         f"got shape {imgs.shape}")
    out = np.empty((K, steps + 1) + imgs.shape[1:], dtype=imgs.dtype)
    out[:, 0] = imgs[0]
    out[:, 1:] = imgs[1:].reshape(K, steps, *imgs.shape[1:])
    return out
