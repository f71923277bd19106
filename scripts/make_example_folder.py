"""Write a folder of PNG images with a CSV of weak labels, as a researcher's own data would come.

    python scripts/make_example_folder.py example/

example/train/*.png   every other position of the 64x64 Blobs set (disk shape), 2,048 images
example/labels.csv    file,angle,distance — classes as words ("near"/"far", "row-side"/"column-side"),
                      30 % of the cells empty (missing labels)
example/new/*.png     16 other positions, no labels: images to encode after training
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from welavae.data import make_blobs, weak_labels


def main(out: str) -> None:
    out = Path(out)
    blobs = make_blobs(1, shape="disk")
    labels = weak_labels(blobs.factors, 2)  # (angle bin, distance bin), p = 2
    words = (("row-side", "column-side"), ("near", "far"))
    rng = np.random.default_rng(0)
    train, new = np.arange(0, 4096, 2), np.arange(1, 4096, 256)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "new").mkdir(parents=True, exist_ok=True)
    rows = ["file,angle,distance"]
    for i in train:
        name = f"blob_{i:04d}.png"
        Image.fromarray((blobs.images[i] * 255).round().astype(np.uint8), mode="L").save(out / "train" / name)
        cells = ["" if rng.random() < 0.3 else words[j][labels[i, j]] for j in range(2)]
        rows.append(",".join([name, *cells]))
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    for i in new:
        pixels = (blobs.images[i] * 255).round().astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(out / "new" / f"new_{i:04d}.png")
    print(f"{len(train)} labelled images in {out / 'train'}, labels in {out / 'labels.csv'}, "
          f"{len(new)} new images in {out / 'new'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "example")
