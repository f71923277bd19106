"""welavae.train.preflight: every refusal before the first write (seeds, the data against the model, memory).

Known answers: the memory estimate of a small config counted by hand (parameters layer by layer, activation
widths, the formula of welavae/train/preflight.py), and the paper preset's numbers against a 24 GiB machine.
"""
import numpy as np
import pytest
from fixtures import blobs_cfg as cfg

from welavae import memory
from welavae.config import TrainConfig, make_run_config
from welavae.data import Dataset, from_arrays
from welavae.train.preflight import (
    activation_width,
    check_memory,
    check_run,
    estimate_memory,
    parse_seeds,
    seed_parameters,
)


def test_bad_training_input_is_refused_at_the_gate(blobs):
    # Arrays are checked once where they become a Dataset (from_arrays), the run's combination by the
    # preflight; the trainer behind them trusts its input.
    images, labels, _ = blobs
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)
    c = cfg()
    bad = images[:256].copy()
    bad[3, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        from_arrays(bad, labels[:256])
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        from_arrays(bad, labels[:256])
    with pytest.raises(ValueError, match="0..1"):
        check_run(c, [0], Dataset(images[:256], labels[:256] + 1))
    with pytest.raises(ValueError, match="needs weak labels"):
        check_run(c, [0], Dataset(images[:256], None))


@pytest.mark.parametrize(
    "text,seeds",
    [("0-7", list(range(8))), ("0,1,5", [0, 1, 5]), ("3", [3]), ("0-2,5", [0, 1, 2, 5]), (" 4 , 2 ", [4, 2]),
     ("10-10", [10]), (7, [7])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    "text,why",
    [("3-1", "--seeds must look like"), ("a", "--seeds must look like"), ("", "--seeds must look like"),
     ("1.5", "--seeds must look like"), ("0-", "--seeds must look like"), ("-1", r"seeds \(--seeds\): seed -1 is outside"),
     ("0,0", r"seeds \(--seeds\) must be distinct"), ("0-2,1", r"seeds \(--seeds\) must be distinct"),
     ("0-100000", "--seeds '0-100000' names more than 100000 seeds")],
)
def test_parse_seeds_refuses_in_one_sentence(text, why):
    with pytest.raises(ValueError, match=why):
        parse_seeds(text)


# ------------------------------------------------------------------------------------------------ memory

def _small():
    """8×8 images (D = 64), one hidden layer of 16, K = 2, labels of 3 and 2 classes read by the encoder, B = 16."""
    return make_run_config("wela", label_dims=(3, 2), image_shape=(8, 8), hidden=(16,), latent_dim=2,
                           train=TrainConfig(batch_size=16))


def test_the_memory_estimate_is_a_hand_count_of_a_small_config():
    c = _small()
    # P by hand: encoder (64 + 5 one-hot)·16 + 16 = 1,120 and 16·4 + 4 = 68; decoder 2·16 + 16 = 48 and the
    # heads 16·(64 + 5) + 69 = 1,173: 2,409 per seed.
    assert seed_parameters(c) == 2409
    # A by hand: encoder 16 + 2K = 20, decoder 16 + D 64 + Σp 5 = 85: 105 values per sample per seed.
    assert activation_width(c) == 105
    parts = estimate_memory(c, 3, 64)  # S = 3 seeds, N = 64 samples, on the CPU: all host memory
    assert parts == {
        "weights, gradients and Adam state": (4 * 3 * 2409 * 4, "host"),  # 115,632
        "the checkpoint": (3 * 3 * 2409 * 4, "host"),  # 86,724
        "activations of a step": (3 * 16 * (3 * 105 + 8 * 16 * 2) * 4, "host"),  # 109,632
        "noise": (2 * 3 * 64 * 2 * 4, "host"),  # 3,072
        "encodings": (3 * 64 * (2 * 2 * 4 + 2), "host"),  # 3,456
    }
    assert sum(b for b, _ in parts.values()) == 318_516
    cuda = estimate_memory(c, 3, 64, image_bytes=1, device="cuda")  # the checkpoint copied to the host, then written
    assert cuda["the checkpoint"] == (2 * 86_724, "host") and cuda["images on the device"] == (64 * 64, "device")
    assert cuda["weights, gradients and Adam state"] == (115_632, "device")


def test_the_conv_network_s_activation_width_is_its_feature_maps():
    # disentanglement_lib's network on 64×64×1, K = 5, no labels, by hand: convolutions 32·32² + 32·16² + 64·8²
    # + 64·4² = 46,080; dense 256 + 10, 256 + 64·4² = 1,546; transposed 64·8² + 32·16² + 32·32² = 45,056; logits 4,096.
    c = make_run_config("tcvae", arch="conv")
    assert activation_width(c) == 46_080 + 1_546 + 45_056 + 4_096


def _refusal(monkeypatch, config, seeds, n, have, device="cpu", image_dtype=np.float32):
    monkeypatch.setattr(memory, "available", lambda dev: (have, "available on this machine"))
    with pytest.raises(ValueError) as e:
        check_memory(config, list(range(seeds)), Dataset(np.zeros((n, *config.model.image_shape[:2]), image_dtype),
                                                         None), device=device)
    return str(e.value)


def test_a_run_that_cannot_fit_is_refused_naming_the_flag_to_change(monkeypatch):
    c = _small()  # 318,516 bytes for 3 seeds on 64 samples (the hand count above)
    monkeypatch.setattr(memory, "available", lambda dev: (318_516, "available on this machine"))
    check_memory(c, [0, 1, 2], Dataset(np.zeros((64, 8, 8), np.float32), None))  # exactly fits
    # 3 seeds need 311 KiB, one seed a third: the seeds are the flag to change.
    said = _refusal(monkeypatch, c, 3, 64, 318_515)
    assert said.startswith("--seeds (3 seeds): this run needs about 0.30 MiB of memory (3 seeds of 2,409 "
                           "parameters, 64 images of 8x8x1; largest: weights, gradients and Adam state 0.11 MiB, "
                           "activations of a step 0.10 MiB) and 0.30 MiB is available on this machine; train fewer")
    # One seed does not fit: the network is too large.
    assert _refusal(monkeypatch, c, 3, 64, 50_000).startswith("--hidden 16: this run needs")
    # A batch of 4,096 on 4,096 samples: the activations are the largest part.
    wide = make_run_config("wela", label_dims=(3, 2), image_shape=(8, 8), hidden=(16,), latent_dim=2,
                           train=TrainConfig(batch_size=4096))
    assert _refusal(monkeypatch, wide, 1, 4096, 1 << 20).startswith("--batch-size 4096: this run needs")
    # On a CUDA device, 10^6 images of 8×8 bytes are the device's largest part: a subset.
    said = _refusal(monkeypatch, c, 1, 1_000_000, 60 << 20, device="cuda", image_dtype=np.uint8)
    assert said.startswith("--subset: this run needs") and "train on a --subset of the data" in said


def test_the_presets_are_never_refused_on_a_24_gib_machine():
    # The largest preset, paper (50 seeds of the 1200-1200 MLP on N = 102,400), by the estimate: 18.8 GiB on
    # the CPU, under the 21.7 GiB an idle 24 GiB machine has available (this one: MemAvailable); on a 24 GiB
    # GPU 11.8 GiB of device memory.
    from plans import resolved

    from welavae.experiments.plan import blobs_plan
    from welavae.experiments.presets import PRESETS

    gib = 1 << 30
    for name in ("quick", "table", "open-questions", "paper"):
        for spec in resolved(blobs_plan(PRESETS[name].settings)):
            n = spec.config.data.variants * 4096
            cpu = estimate_memory(spec.config, len(spec.seeds), n, image_bytes=1)
            assert sum(b for b, _ in cpu.values()) < 19 * gib, (name, spec.model)
            cuda = estimate_memory(spec.config, len(spec.seeds), n, image_bytes=1, device="cuda")
            assert sum(b for b, w in cuda.values() if w == "device") < 12 * gib, (name, spec.model)
