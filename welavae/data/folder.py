"""A folder of image files with a CSV of weak labels: :func:`load_image_folder`.

Images are read by Pillow into [0, 1], gray (N, H, W) or colour (N, H, W, 3).
The CSV's header is ``file,<label name>,…``; each row names a file of the
folder and its labels; an empty cell is a missing label.  A label column
holds numbers (class indices, read by value: ``1`` and ``1.0`` are one
class; ``1.5`` is refused) or strings (classes mapped to indices in sorted
order; the mapping is kept as ``label_classes``).  Every defect is one
sentence naming the file and the row.
"""
from __future__ import annotations

import contextlib
import csv
import math
import struct
import warnings
from pathlib import Path

import numpy as np

from .dataset import MISSING, Dataset, path_kind, require_file

__all__ = ["load_image_folder", "read_images"]

#: Pillow modes read as they are for ``color="gray"`` (one channel of integers or floats).
_GRAY_MODES = ("L", "I;16", "I", "F")

#: What Pillow raises on a damaged file: its own UnidentifiedImageError and OSError ("image file is
#: truncated"), and what its decoders let through (SyntaxError "broken PNG file", struct.error, EOFError).
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)


class _TooLarge(ValueError):
    """An image with more pixels than Pillow's limit: refused as it is, not as an unreadable file."""


@contextlib.contextmanager
def _open_image(path: Path):
    """Pillow's image at ``path``, its size checked before any pixel is decoded: more pixels than Pillow's
    limit (``PIL.Image.MAX_IMAGE_PIXELS``, against decompression bombs) is refused naming both."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in one sentence
            im = Image.open(path)
    except Image.DecompressionBombError:
        im = None
    with contextlib.ExitStack() as stack:
        if im is not None:
            stack.enter_context(im)
            w, h = im.size
        else:  # Pillow refused before we could ask: read the size from the header alone
            w, h = _header_size(path)
        if limit is not None and (im is None or w * h > limit):
            raise _TooLarge(f"{path} is {w}x{h} = {w * h:,} pixels, more than Pillow's limit of {limit:,} "
                             "(PIL.Image.MAX_IMAGE_PIXELS, a guard against decompression bombs)")
        yield im


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, Pillow's bomb check off (nothing is decoded)."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _read_image(path: Path, color: str = "gray") -> np.ndarray:
    """One image file → float32 in [0, 1]: (H, W) for ``color="gray"``, (H, W, 3) for ``"rgb"``.

    A file with an alpha channel (RGBA, LA, a palette with transparency) is
    flattened onto black, value·alpha, with a one-line warning: the Bernoulli
    likelihood has no notion of transparency, and black is the background
    that a value of 0 already means.
    """
    from PIL import Image

    try:
        with _open_image(path) as im:
            im.load()
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
                warnings.warn(f"{path} has an alpha channel: flattened onto black (value x alpha)",
                              UserWarning, stacklevel=4)
                im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
            if color == "rgb":
                g = im.convert("RGB")
            else:
                g = im if im.mode in _GRAY_MODES else im.convert("L")
            a = np.asarray(g)
    except _TooLarge:
        raise
    except _UNREADABLE as e:
        raise ValueError(f"{path} is not a readable image file ({type(e).__name__})") from None
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16 or g.mode == "I;16":
        return a.astype(np.float32) / 65535.0
    a = a.astype(np.float32)
    if a.min() < 0 or a.max() > 1:
        raise ValueError(f"{path}: pixel values lie in [{a.min():g}, {a.max():g}], outside [0, 1]")
    return a

def _is_gray(path: Path) -> bool:
    """Whether an image file holds one channel (Pillow's mode; L, I, F, 1, LA, or a gray palette)."""
    try:
        with _open_image(path) as im:
            if im.mode == "P":
                rgb = np.asarray(im.getpalette() or [], dtype=np.int64).reshape(-1, 3)
                return bool((rgb == rgb[:, :1]).all())
            return im.mode in ("1", "L", "LA", "La", "I", "I;16", "F")
    except _TooLarge:
        raise
    except _UNREADABLE as e:
        raise ValueError(f"{path} is not a readable image file ({type(e).__name__})") from None

def read_images(paths, *, color: str = "gray") -> np.ndarray:
    """Float32 (N, H, W) (``color="gray"``) or (N, H, W, 3) (``"rgb"``) in [0, 1] from image files (Pillow).

    All must have one size and one mode: a folder mixing grayscale and colour
    files is refused, naming the first file that differs from the first one
    (converting silently would hide that the colour of part of the data is lost
    or invented).
    """
    if color not in ("gray", "rgb"):
        raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
    images, shape, first, first_gray = [], None, None, None
    for path in paths:
        gray = _is_gray(Path(path))
        if first_gray is None:
            first_gray = gray
        elif gray != first_gray:
            kinds = ("grayscale", "colour")
            raise ValueError(f"{path} is a {kinds[not gray]} image but {first} is {kinds[not first_gray]}: "
                             "a folder must hold one kind (convert the files, then read with --color gray or rgb)")
        a = _read_image(Path(path), color)
        if shape is None:
            shape, first = a.shape, path
        elif a.shape != shape:
            raise ValueError(f"{path} is {a.shape[1]}x{a.shape[0]} pixels but {first} is {shape[1]}x{shape[0]}: "
                             "all images must have one size")
        images.append(a)
    if not images:
        raise ValueError("no image files given")
    return np.stack(images)

def _image_files(folder: Path) -> list[Path]:
    kind = path_kind(folder)
    if kind is None:
        raise FileNotFoundError(f"image folder {folder} does not exist")
    if kind != "a directory":
        raise ValueError(f"image folder {folder} is {kind}, not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"image folder {folder} holds no files")
    return files

def _label_columns(columns: list[list[str]], names, csv_path: Path, label_classes=None):
    """Cells → (labels (N, m) int64, label_dims, label_classes); '' = missing.

    A column of numerals holds class indices, read by value ('1', '01' and
    '1.0' are class 1; '1.5' is refused); any other column holds class names,
    in which two numerals of one value ('1' and '1.0') are refused as
    ambiguous.  'nan' or 'inf' among numerals is refused (a missing label is
    an empty cell), not made a class name.

    A column of numerals names the classes 0 … max: every index up to the
    largest becomes a class, observed or not (the model's label head has one
    output each).  So the largest index is bounded by the values that occur,
    before the classes are built: at most max(2k, 1000) classes for k distinct
    values.  2k lets half the classes go unobserved (a partly labelled column,
    a subset of a numbered set); 1000 keeps any small numbering; beyond both
    the column is an identifier or a typo (one cell of 10^30 would otherwise
    build 10^30 classes), never a weak label.
    """
    labels = np.full((len(columns[0]) if columns else 0, len(columns)), MISSING, dtype=np.int64)
    dims, classes = [], []
    for j, (col, name) in enumerate(zip(columns, names)):
        values = [c for c in col if c != ""]
        if not values:
            raise ValueError(f"{csv_path}: column {name!r} has no observed label")
        nums = {v: _numeral(v) for v in set(values)}

        def row_of(cell, col=col):
            return col.index(cell) + 2

        odd = next((v for v in sorted(nums, key=row_of) if nums[v] is None and _is_nonfinite(v)), None)
        if odd is not None and all(n is not None or _is_nonfinite(v) for v, n in nums.items()):
            raise ValueError(f"{csv_path}, row {row_of(odd)}: label {name!r} = {odd} is not a number in a column of "
                             "numbers (class indices 0, 1, 2, ...); leave the cell empty for a missing label")

        if label_classes is not None:  # a trained model's classes (encode)
            cls = list(label_classes[j])
            known = {c: i for i, c in enumerate(cls)}
            if all(isinstance(_numeral(c), int) for c in cls):  # numbered classes: cells by value
                by_value = {_numeral(c): i for i, c in enumerate(cls)}
                known.update({v: by_value[n] for v, n in nums.items() if n in by_value})
        elif all(n is not None for n in nums.values()):
            frac = next((v for v, n in nums.items() if isinstance(n, float)), None)
            if frac is not None:
                raise ValueError(f"{csv_path}, row {row_of(frac)}: label {name!r} = {frac} is not a whole number "
                                 "(a column of numbers holds class indices 0, 1, 2, ...; name classes with words)")
            ints = sorted(set(nums.values()))
            if ints[0] < 0:
                cell = next(v for v, n in nums.items() if n < 0)
                raise ValueError(f"{csv_path}, row {row_of(cell)}: label {name!r} = {cell} is negative "
                                 "(class indices start at 0; leave the cell empty for a missing label)")
            bound = max(2 * len(ints), _MIN_CLASS_BOUND)
            if ints[-1] >= bound:
                cell = next(v for v, n in nums.items() if n == ints[-1])
                raise ValueError(f"{csv_path}, row {row_of(cell)}: label {name!r} = {cell} would make {ints[-1] + 1} "
                                 f"classes (0 to {ints[-1]}) of which {len(ints)} occur; a column of numbers holds "
                                 f"class indices 0, 1, 2, ... (at most {bound} classes here): renumber them, or "
                                 "name the classes with words")
            cls = [str(i) for i in range(ints[-1] + 1)]
            known = dict(nums)  # '1', '01', '1.0' → 1
        else:
            same: dict = {}
            for v in sorted(nums, key=row_of):
                n = nums[v]
                if n is None:
                    continue
                if n in same:
                    raise ValueError(f"{csv_path}, rows {row_of(same[n])} and {row_of(v)}: label {name!r} writes one "
                                     f"number two ways ({same[n]!r}, {v!r}); write each class one way")
                same[n] = v
            cls = sorted(set(values))
            known = {c: i for i, c in enumerate(cls)}
        if label_classes is None and len(set(known[v] for v in values)) < 2:
            raise ValueError(f"{csv_path}: column {name!r} has a single class; a weak label needs at least two")
        for r, c in enumerate(col):
            if c == "":
                continue
            if c not in known:
                raise ValueError(f"{csv_path}, row {r + 2}: label {name!r} = {c!r} is not one of its classes {cls}")
            labels[r, j] = known[c]
        dims.append(len(cls))
        classes.append(tuple(cls))
    return labels, tuple(dims), tuple(classes)

#: A column of numbers may name at most max(2 × its distinct values, this) classes (see :func:`_label_columns`).
_MIN_CLASS_BOUND = 1000


def _is_nonfinite(text: str) -> bool:
    """Whether a cell spells a float that is not finite ('nan', 'inf', '-Infinity', ...)."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _numeral(text: str):
    """The number a cell names: an int for '1', '01', '1.0'; a float for '1.5'; None for a word (or nan/inf)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return None
    if not math.isfinite(v):
        return None
    return int(v) if v.is_integer() else v

def load_image_folder(images_dir, labels_csv=None, *, label_names=None, label_classes=None,
                      color: str = "gray") -> Dataset:
    """A folder of image files (PNG, JPEG, … read by Pillow in [0, 1]) with a CSV of weak labels.

    ``color``: ``"gray"`` reads (N, H, W), ``"rgb"`` (N, H, W, 3); a folder
    mixing grayscale and colour files is refused (:func:`read_images`).

    The CSV's header is ``file,<label name>,…``; each row names a file of the
    folder and its labels; an empty cell is a missing label.  Without a CSV
    every file of the folder is read, in sorted order, and there are no
    labels.  ``label_names`` / ``label_classes``: those of a trained model, to
    read its labels for encoding.  Every defect — an unreadable file, images
    of different sizes, a row naming a missing file or one outside the
    folder (``../x.png``, an absolute path, a link leading out), an image with
    no row, a duplicate row, a label column named twice, a non-integer number
    in a numeric column, a class outside the known ones, a label column with a
    single class, no labelled sample, a numeric class index far beyond the
    values that occur, nan/inf among numbers, an unnamed label column, an
    image over Pillow's pixel limit, a CSV that is a FIFO or a link loop — is
    one ``ValueError`` naming the file and row.
    """
    folder = Path(images_dir)
    files = _image_files(folder)
    if labels_csv is None:
        return Dataset(images=read_images(files, color=color), labels=None, files=tuple(p.name for p in files))
    csv_path = require_file(labels_csv, f"label file {labels_csv} does not exist")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{csv_path} is not a readable CSV file ({e})") from None
    if not rows or not rows[0] or rows[0][0].strip().lower() != "file" or len(rows[0]) < 2:
        raise ValueError(f"{csv_path}: the header must be 'file,<label name>,...' with at least one label column")
    header = [h.strip() for h in rows[0]]
    names = header[1:]
    blank = next((j for j, n in enumerate(names) if not n), None)
    if blank is not None:
        raise ValueError(f"{csv_path}: the header's column {blank + 2} has no name; name every label column")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise ValueError(f"{csv_path}: the header names label column {twice!r} twice; give each label one column")
    if label_names is not None and tuple(names) != tuple(label_names):
        raise ValueError(f"{csv_path}: label columns {names} differ from the model's {list(label_names)}")
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    seen: dict[str, int] = {}
    for line, r in body:
        if len(r) != len(header):
            raise ValueError(f"{csv_path}, row {line}: {len(r)} cells, the header has {len(header)}")
        name = r[0].strip()
        if name in seen:
            raise ValueError(f"{csv_path}, row {line}: {name!r} is listed twice (first at row {seen[name]})")
        seen[name] = line
        if Path(name).is_absolute() or not (folder / name).resolve().is_relative_to(folder.resolve()):
            raise ValueError(f"{csv_path}, row {line}: {name!r} lies outside {folder}; "
                             "rows name files inside the image folder")
        if not (folder / name).is_file():
            raise ValueError(f"{csv_path}, row {line}: {name!r} is not a file in {folder}")
    listed = set(seen)
    unlisted = [p.name for p in files if p.name not in listed]
    if unlisted:
        raise ValueError(f"{folder / unlisted[0]} has no row in {csv_path} ({len(unlisted)} image(s) without labels; "
                         "add a row with empty cells for an unlabelled image)")
    order = [r[0].strip() for _, r in body]
    columns = [[r[j].strip() for _, r in body] for j in range(1, len(header))]
    labels, dims, classes = _label_columns(columns, names, csv_path, label_classes)
    if label_classes is None and not (labels >= 0).any():
        raise ValueError(f"{csv_path}: no sample has an observed label")
    images = read_images([folder / f for f in order], color=color)
    return Dataset(images=images, labels=labels, label_dims=dims, label_names=tuple(names),
                   label_classes=classes, files=tuple(order))
