"""welavae.train.tensorboard: one scalar per term and γ per seed each epoch, the traversals every E epochs."""
import numpy as np
import pytest
from fixtures import as_dataset, cfg16

import welavae.train.tensorboard as tb
from welavae.config import TERMS
from welavae.train.rundir import train_run


class FakeWriter:
    """A SummaryWriter that records what it is given."""

    made = []

    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.figures, self.closed = log_dir, [], [], False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_figure(self, tag, figure, step):
        self.figures.append((tag, step, figure.axes and len(figure.axes)))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_every_term_and_gamma_per_seed_each_epoch_and_the_traversals_every_e(blobs16, tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "_summary_writer", lambda: FakeWriter)
    FakeWriter.made = []
    images, labels, factors = blobs16
    c = cfg16(encoder_input="image+labels", epochs=3)
    result = train_run(c, [4, 9], tmp_path / "run", data=as_dataset(images, labels, factors), progress=False,
                       tensorboard=tmp_path / "tb", tensorboard_every=2)
    (w,) = FakeWriter.made
    assert w.log_dir == str(tmp_path / "tb") and w.closed
    # WeLa-VAE with MSS: every term is finite (the "tc" term too), so 6 terms + γ, 2 seeds, 3 epochs.
    assert len(w.scalars) == 3 * 2 * (len(TERMS) + 1)
    by_tag = {(tag, step): value for tag, value, step in w.scalars}
    assert by_tag[("gamma/seed_9", 2)] == c.objective.gamma  # a fixed γ shows its value
    assert by_tag[("image_nll/seed_4", 3)] == pytest.approx(result.history[2, 0, TERMS.index("image_nll")])
    assert [(tag, step) for tag, step, _ in w.figures] == [("traversals/seed_4", 2), ("traversals/seed_9", 2),
                                                           ("traversals/seed_4", 3), ("traversals/seed_9", 3)]


def test_without_the_package_the_run_is_refused_before_anything_is_written(blobs16, tmp_path, monkeypatch):
    def missing():
        raise ModuleNotFoundError("--tensorboard needs the tensorboard package: pip install 'wela-vae[tensorboard]'")

    monkeypatch.setattr(tb, "_summary_writer", missing)
    images, labels, factors = blobs16
    with pytest.raises(ModuleNotFoundError, match="wela-vae\\[tensorboard\\]"):
        train_run(cfg16(encoder_input="image+labels", epochs=1), [0], tmp_path / "run",
                  data=as_dataset(images, labels, factors), progress=False, tensorboard=tmp_path / "tb")
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_real_event_files(blobs16, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images, labels, factors = blobs16
    train_run(cfg16(encoder_input="image+labels", epochs=2), [0], tmp_path / "run",
              data=as_dataset(images, labels, factors), progress=False, tensorboard=tmp_path / "tb",
              tensorboard_every=1)
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert "gamma/seed_0" in acc.Tags()["scalars"] and len(acc.Scalars("loss/seed_0")) == 2
    assert np.isfinite([e.value for e in acc.Scalars("loss/seed_0")]).all()
