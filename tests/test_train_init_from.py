"""welavae.train.init_from: a run started from another run's weights (``--init-from``; issue 23).

Known answers: copying weights and training zero epochs gives back the
source's encoder means bit for bit; a resume never reads the source again.
"""
import json
import shutil

import numpy as np
import pytest
import torch
from fixtures import as_dataset
from fixtures import cfg16 as cfg

from welavae.nn import EnsembleVAE
from welavae.run import Run
from welavae.train import train
from welavae.train.init_from import shared_parameters
from welavae.train.rundir import train_run


@pytest.fixture(scope="module")
def blobs(blobs16):
    """This file's runs are on 16×16 Blobs (tests/conftest.py)."""
    return blobs16


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


def test_a_source_that_found_its_gamma_hands_each_seed_its_gamma(blobs, tmp_path):
    import dataclasses

    from welavae.config import make_run_config
    from welavae.train.gamma import GammaController, GammaTarget
    from welavae.train.init_from import init_from_run

    base = cfg(encoder_input="image+labels", epochs=2)
    auto = make_run_config("wela", label_dim=2, hidden=base.model.hidden, data=base.data, train=base.train,
                           gamma="auto", gamma_target="grad:1")
    images, labels, factors = blobs
    src = train_run(auto, [0, 1, 2], tmp_path / "src", data=as_dataset(images, labels, factors), progress=False)
    target = dataclasses.replace(auto, train=dataclasses.replace(auto.train, init_from=str(tmp_path / "src")))
    model = EnsembleVAE(target.model, [2, 0])
    gamma = GammaController(2, target=GammaTarget.parse("grad:1"), gamma0=auto.objective.gamma, gamma_max=256.0)
    init_from_run(model, target, gamma=gamma)
    # seed 2, then seed 0, of the source: their last γ; the moving average restarts (seen is False)
    np.testing.assert_allclose(gamma.gamma.numpy(), src.gamma[-1][[2, 0]], rtol=1e-6)
    assert not gamma.seen.any()
