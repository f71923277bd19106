"""Label windows, starts from another run, and tracking (welavae.train.trainer's window, welavae.train.init_from, welavae.train.tracking; issue 23).

Known answers: a missing label adds exactly 0 to the loss and every gradient
(categorical_nll), so an empty window trains exactly as labels that are all
missing, and a full window exactly as no window; the window is a function of
the epoch, so a killed run resumes into the same result; copying weights
and training zero epochs gives back the source's encoder means bit for bit.
"""
import csv
import json
import shutil

import numpy as np
import pytest
import torch

from welavae.cli import main
from welavae.config import DataConfig, RunConfig, TrainConfig, make_run_config
from welavae.data import Dataset, make_blobs, weak_labels
from welavae.metrics import cartesian_mse, polar_mse
from welavae.nn import EnsembleVAE
from welavae.run import Run
from welavae.nn.encode import encode_dataset
from welavae.train import train
from welavae.train.rundir import train_run
from welavae.train.init_from import shared_parameters
from welavae.train.tracking import TRACK_SAMPLES, tracked
from welavae.train.trainer import labels_observed

SIZE = 16  # 16×16 Blobs, N = 256: seconds per run


@pytest.fixture(scope="module")
def blobs():
    b = make_blobs(1, size=SIZE, seed=0)
    return b.images, weak_labels(b.factors, 2, size=SIZE), b.factors


def cfg(model="wela", *, epochs=3, encoder_input="image", latent_dim=2, hidden=(16, 8), **train_kw):
    return make_run_config(model, label_dim=2 if model == "wela" else None, latent_dim=latent_dim, hidden=hidden,
                           encoder_input=encoder_input, data=DataConfig(variants=1, size=SIZE),
                           train=TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, checkpoint_every=1, **train_kw))


def as_dataset(images, labels, factors):
    """What welavae.data.load gives train_run for Blobs with p = 2 (or without labels)."""
    return Dataset(images=images, labels=labels, label_dims=(2, 2) if labels is not None else (), factors=factors)


def mu_of(result, images, labels=None):
    return encode_dataset(result.model, images, labels)[0]


# ------------------------------------------------------------------------------------ config
def test_configs_without_the_new_fields_keep_their_hash():
    # Hashes computed by welavae 0.2.0 (main before issue 23) for these configs: the
    # sweep's finished rows and every run's checkpoint are keyed by them.
    assert make_run_config("wela", label_dim=2).hash() == "f5af1694bc50d21b"
    assert make_run_config("tcvae").hash() == "d0d6a3312569ac1e"


def test_new_fields_round_trip_and_change_the_hash():
    c = cfg(label_epochs=(1, 2), init_from="/some/run", track_every=2)
    back = RunConfig.from_json(c.to_json())
    assert back == c and back.train.label_epochs == (1, 2)
    assert back.hash() != cfg().hash()


@pytest.mark.parametrize("kw, match", [
    (dict(label_epochs=(2, 1)), "label_epochs"),
    (dict(label_epochs=(0, 4)), "label_epochs"),  # past epochs = 3
    (dict(label_epochs=(-1, 2)), "label_epochs"),
    (dict(track_every=-1), "track_every"),
])
def test_bad_schedule_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        cfg(**kw)


def test_label_window_needs_labels():
    with pytest.raises(ValueError, match="no weak labels"):
        cfg("tcvae", label_epochs=(0, 1))


def test_window_and_tracked_epochs():
    t = TrainConfig(epochs=10, label_epochs=(2, 5), track_every=4)
    assert [e for e in range(10) if labels_observed(t, e)] == [2, 3, 4]
    assert [e for e in range(11) if tracked(t, e)] == [4, 5, 8, 10]  # every 4th, the window's end, the last
    assert not any(tracked(TrainConfig(epochs=10), e) for e in range(11))


# ------------------------------------------------------------------------------ label window
@pytest.mark.parametrize("encoder_input", ["image", "image+labels"])
def test_empty_window_equals_every_label_missing(blobs, encoder_input, monkeypatch):
    images, labels, _ = blobs
    seeds = [0, 1]
    # The trainer refuses labels none of which is observed (a user's mistake); the window
    # produces exactly that inside the loop, so the check is lifted for the reference run.
    monkeypatch.setattr("welavae.train.preflight.check_labels", lambda y, n, dims: np.asarray(y, dtype=np.int64))
    windowed = train(cfg(encoder_input=encoder_input, label_epochs=(0, 0)), seeds, images, labels, progress=False)
    missing = train(cfg(encoder_input=encoder_input), seeds, images, np.full_like(labels, -1), progress=False)
    for (k, a), b in zip(windowed.model.state_dict().items(), missing.model.state_dict().values()):
        assert torch.equal(a, b), k
    # and no label ever reached a gradient: the label heads are still their initialisation
    init = EnsembleVAE(windowed.config.model, seeds).state_dict()
    last = len(windowed.model.decoder) - 1
    for name in (f"decoder.{last}.weight1", f"decoder.{last}.bias1"):
        assert torch.equal(windowed.model.state_dict()[name], init[name])
    assert (windowed.history[:, :, 2] == 0).all()  # label_nll


def test_full_window_equals_the_normal_run_and_a_short_one_does_not(blobs):
    images, labels, _ = blobs
    normal = train(cfg(), [0, 1], images, labels, progress=False)
    full = train(cfg(label_epochs=(0, 3)), [0, 1], images, labels, progress=False)
    short = train(cfg(label_epochs=(1, 2)), [0, 1], images, labels, progress=False)
    assert np.array_equal(mu_of(full, images), mu_of(normal, images))
    assert np.array_equal(full.history, normal.history)
    assert not np.array_equal(mu_of(short, images), mu_of(normal, images))
    # outside the window the label term is exactly 0
    label_nll = short.history[:, :, 2]
    assert (label_nll[[0, 2]] == 0).all() and (label_nll[1] > 0).all()


def test_empty_window_from_a_tcvae_start_equals_the_tcvae_run(blobs, tmp_path):
    """A label-free WeLa-VAE whose labels never arrive is β-TCVAE with two more, untouched, label heads.

    Without --init-from the two differ at the start: the dense head is drawn as one
    layer of D + Σp outputs, so the image bias comes from other draws than β-TCVAE's
    D outputs.  Starting both from one 1-epoch β-TCVAE removes that difference (a run
    of 0 epochs is refused unless it copies another: ``--epochs 0`` alone trains nothing);
    then the WeLa-VAE's encoder means equal β-TCVAE's bit for bit after training.
    """
    images, labels, factors = blobs
    train_run(cfg("tcvae", epochs=1), [0, 1], tmp_path / "tc1", data=as_dataset(images, None, factors))
    tc = train(cfg("tcvae", init_from=str(tmp_path / "tc1")), [0, 1], images, progress=False)
    wela = train(cfg(label_epochs=(0, 0), init_from=str(tmp_path / "tc1")), [0, 1], images, labels, progress=False)
    assert np.array_equal(mu_of(wela, images), mu_of(tc, images))
    assert not np.array_equal(mu_of(train(cfg(label_epochs=(0, 0)), [0, 1], images, labels, progress=False), images),
                              mu_of(tc, images))


def test_killed_mid_window_resumes_into_the_same_run(blobs, tmp_path):
    images, labels, factors = blobs
    c = cfg(epochs=4, label_epochs=(1, 3), track_every=1)
    whole = train_run(c, [0, 1], tmp_path / "whole", data=as_dataset(images, labels, factors))

    class Killed(Exception):
        pass

    def kill(epoch, _):
        if epoch == 2:  # after epoch 2's checkpoint, inside the window
            raise Killed

    with pytest.raises(Killed):
        train_run(c, [0, 1], tmp_path / "cut", data=as_dataset(images, labels, factors), on_epoch=kill)
    resumed = train_run(c, [0, 1], tmp_path / "cut", data=as_dataset(images, labels, factors))
    assert resumed.resumed_from == 2
    assert np.array_equal(Run(tmp_path / "cut").mu, Run(tmp_path / "whole").mu)
    assert np.array_equal(resumed.history, whole.history)
    assert (tmp_path / "cut" / "tracking.csv").read_text() == (tmp_path / "whole" / "tracking.csv").read_text()


# --------------------------------------------------------------------------------- init-from
@pytest.fixture(scope="module")
def source(blobs, tmp_path_factory):
    """A finished 3-epoch β-TCVAE with K = 2 (seeds 0, 1) and a WeLa-VAE p = 2 with a label-free encoder."""
    images, labels, factors = blobs
    root = tmp_path_factory.mktemp("sources")
    train_run(cfg("tcvae"), [0, 1], root / "tcvae", data=as_dataset(images, None, factors))
    train_run(cfg(), [0, 1], root / "wela", data=as_dataset(images, labels, factors))
    return root


@pytest.mark.parametrize("src", ["tcvae", "wela"])
def test_init_from_with_zero_epochs_reproduces_the_source_means(blobs, source, tmp_path, src):
    images, labels, factors = blobs
    c = cfg(epochs=0, init_from=str(source / src))
    train_run(c, [1], tmp_path / "copy", data=as_dataset(images, labels, factors))  # seed 1 alone, from seed 1
    assert np.array_equal(Run(tmp_path / "copy").mu[0], Run(source / src).mu[1])


def test_a_tcvae_start_copies_all_but_the_label_heads(blobs, source):
    tc = Run(source / "tcvae").load_model()
    c = cfg(epochs=0, init_from=str(source / "tcvae"))
    target = EnsembleVAE(c.model, [0, 1])
    copied = shared_parameters(tc, target)
    last = len(target.decoder) - 1
    assert set(dict(target.named_parameters())) - set(copied) == {f"decoder.{last}.weight1", f"decoder.{last}.bias1"}
    images, labels, _ = blobs
    started = train(c, [0, 1], images, labels, progress=False).model.state_dict()
    fresh = EnsembleVAE(c.model, [0, 1]).state_dict()
    for name, value in started.items():  # copied from the source, or the target's own seeded initialisation
        assert torch.equal(value, tc.state_dict()[name] if name in copied else fresh[name]), name


@pytest.mark.parametrize("change, match", [
    (dict(hidden=(16, 4)), "hidden"),
    (dict(encoder_input="image+labels"), "label-free encoder"),
    (dict(latent_dim=3), "latent_dim"),
])
def test_init_from_another_architecture_is_refused(blobs, source, tmp_path, change, match):
    images, labels, factors = blobs
    with pytest.raises(ValueError, match=match):
        train_run(cfg(init_from=str(source / "tcvae"), **change), [0], tmp_path / "out", data=as_dataset(images, labels, factors))
    assert not (tmp_path / "out").exists()


def test_init_from_refusals(blobs, source, tmp_path):
    images, labels, factors = blobs
    data = as_dataset(images, labels, factors)
    with pytest.raises(ValueError, match=r"seeds \[2\] are not in the source"):
        train_run(cfg(init_from=str(source / "tcvae")), [0, 2], tmp_path / "a", data=data)
    with pytest.raises(ValueError, match="has no weak labels|label heads"):
        train_run(cfg("tcvae", init_from=str(source / "wela")), [0], tmp_path / "b", data=as_dataset(images, None, factors))
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        train_run(cfg(init_from=str(tmp_path / "nothing")), [0], tmp_path / "c", data=data)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(source / "tcvae", unfinished)
    (unfinished / "status.json").unlink()
    with pytest.raises(ValueError, match="not a finished run"):
        train_run(cfg(init_from=str(unfinished)), [0], tmp_path / "d", data=data)
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_init_from_is_not_applied_again_on_resume(blobs, source, tmp_path):
    images, labels, factors = blobs
    src = tmp_path / "src"
    shutil.copytree(source / "tcvae", src)
    c = cfg(epochs=3, init_from=str(src))
    train_run(c, [0, 1], tmp_path / "whole", data=as_dataset(images, labels, factors))

    def kill(epoch, _):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(c, [0, 1], tmp_path / "cut", data=as_dataset(images, labels, factors), on_epoch=kill)
    shutil.rmtree(src)  # a resume must not need (or re-read) the source
    resumed = train_run(c, [0, 1], tmp_path / "cut", data=as_dataset(images, labels, factors))
    assert resumed.resumed_from == 1
    assert np.array_equal(Run(tmp_path / "cut").mu, Run(tmp_path / "whole").mu)
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["train"]["init_from"] == str(src)


# ---------------------------------------------------------------------------------- tracking
def _tracking(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tracking_rows_hold_the_coordinate_mse_and_change_nothing(blobs, tmp_path):
    images, labels, factors = blobs
    c = cfg(epochs=5, label_epochs=(0, 3), track_every=2)
    train_run(c, [0, 1], tmp_path / "tracked", data=as_dataset(images, labels, factors))
    train_run(cfg(epochs=5, label_epochs=(0, 3)), [0, 1], tmp_path / "plain", data=as_dataset(images, labels, factors))
    run = Run(tmp_path / "tracked")
    assert np.array_equal(run.mu, Run(tmp_path / "plain").mu)  # tracking draws no randomness, changes no weight
    rows = _tracking(tmp_path / "tracked" / "tracking.csv")
    assert [(int(r["epoch"]), int(r["seed"])) for r in rows] == [(e, s) for e in (2, 3, 4, 5) for s in (0, 1)]
    # N = 256 < TRACK_SAMPLES: the subset is every sample, so the last epoch's row is the run's own score
    assert len(images) < TRACK_SAMPLES
    for r in rows[-2:]:
        mu = run.mu[int(r["seed"])]
        assert float(r["polar_mse"]) == pytest.approx(polar_mse(mu, factors).mse, rel=1e-6)
        assert float(r["cartesian_mse"]) == pytest.approx(cartesian_mse(mu, factors).mse, rel=1e-6)


def test_tracking_needs_factors(blobs, tmp_path):
    images, labels, _ = blobs
    with pytest.raises(ValueError, match="ground-truth factors"):
        train_run(cfg(track_every=1), [0], tmp_path / "out", data=as_dataset(images, labels, None))
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- command line
def test_cli_flags_reach_config_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--model", "wela", "--label-dim", "2", "--encoder-input", "image", "--variants", "1",
               "--shape", "disk", "--hidden", "8", "--epochs", "2", "--batch-size", "512", "--label-epochs", "1:2",
               "--track-every", "1", "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    assert rc == 0
    train_cfg = json.loads((out / "config.json").read_text())["train"]
    assert train_cfg["label_epochs"] == [1, 2] and train_cfg["track_every"] == 1 and train_cfg["init_from"] is None
    assert [r["epoch"] for r in _tracking(out / "tracking.csv")] == ["1", "2"]
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "wela", "--label-dim", "2", "--label-epochs", "2", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "expected A:B" in capsys.readouterr().err
