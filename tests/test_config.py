"""welavae.config: JSON round trips, hashes of configs written by welavae 0.1.0 and 0.2.0, γ by the paper's rule.

Errors name the field.  Known answers: the 0.1.0 dicts below are
``RunConfig.to_dict()`` output of welavae 0.1.0 (commit 430b37c, its
``welavae/config.py`` run as it was); the hashes are the ones welavae 0.2.0
printed (commit 4ca4b81); Table 1's γ values are the paper's (β = 40,
γ = 2000, 1500, 1000, 800, 750, 600, 500 for p = 2…8).
"""
import dataclasses
import json

import pytest
from fixtures import V020
from fixtures import cfg16 as cfg

from welavae.config import (
    REGULARISERS,
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    RunConfig,
    TrainConfig,
    make_run_config,
    paper_gamma,
)
from welavae.models import MODELS
from welavae.run import Run

#: Table 1 of the paper: p → γ (64×64 images, so image dimension 4096).
TABLE1_GAMMA = {2: 2000.0, 3: 1500.0, 4: 1000.0, 5: 800.0, 6: 750.0, 7: 600.0, 8: 500.0}


def every_field_off_default() -> RunConfig:
    """A config in which every field of every dataclass differs from its default."""
    return RunConfig(
        name="mine",
        kind="betavae",
        data=DataConfig(source="benchmark", variants=3, size=32, seed=7, shape="disk", sigma_range=(1, 2.5),
                        path="imgs", labels_path="labels.csv", label_fraction=0.25, label_seed=11, color="rgb",
                        dataset="sprites", data_path="s.npz", subset=10, subset_seed=2, weak_labels="bins(posX):2",
                        grid=(1, 3, 6, 40, 32, 2), fingerprint="benchmark:0123456789abcdef0123456789abcdef"),
        model=ModelConfig(latent_dim=4, hidden=(16, 8, 4), label_dims=(3, 2), image_shape=(32, 48, 3), arch="conv", encoder="conv",
                          encoder_input="image", label_head="diagonal", label_names=("angle", "side"),
                          label_classes=(("a", "b", "c"), ("left", "right"))),
        objective=ObjectiveConfig(regulariser="kl", beta=4.5, gamma=123.0, tc_estimator="mws",
                                  dip_lambda_od=2.0, dip_lambda_d=3.0, gamma_target="nll:0.05"),
        train=TrainConfig(epochs=3, batch_size=32, lr=3e-3, adam_betas=(0.8, 0.99), adam_eps=1e-6, data_seed=5,
                          checkpoint_every=2, eval_batch_size=100, checkpoint_minutes=2.5,
                          label_epochs=(1, 2), init_from="/runs/source", track_every=2),
    )


def peer_fields_off_default() -> RunConfig:
    """The fields a WeLa config cannot move together with ``gamma_target`` and ``label_head``: S2's (docs/peers.md)."""
    return make_run_config("s2tcvae", label_dims=(3, 2), supervised_loss="embed", gamma_sup=2.5,
                           data=DataConfig(source="npz", path="x.npz"), image_shape=(8, 8))


def test_json_round_trip_of_every_dataclass_and_field():
    configs = (every_field_off_default(), peer_fields_off_default())
    defaults = RunConfig()
    for part in ("data", "model", "objective", "train"):  # the fixtures really move every field
        moved = [getattr(c, part).__dict__ for c in configs]
        b = getattr(defaults, part).__dict__
        assert [k for k in b if all(a[k] == b[k] for a in moved)] == [], part
    for c in configs:
        back = RunConfig.from_json(c.to_json())
        assert back == c and back.to_json() == c.to_json() and back.hash() == c.hash()
    back = RunConfig.from_json(configs[0].to_json())
    # JSON has lists; the dataclasses hold tuples again (frozen, hashable)
    assert back.model.label_classes == (("a", "b", "c"), ("left", "right")) and back.train.adam_betas == (0.8, 0.99)
    assert json.loads(back.to_json())["train"]["adam_betas"] == [0.8, 0.99]


def test_hash_is_stable_and_follows_every_change():
    c = make_run_config("wela", label_dim=2)
    assert c.hash() == make_run_config("wela", label_dim=2).hash() and len(c.hash()) == 16
    assert c.hash() != make_run_config("wela", label_dim=2, gamma=200).hash()
    assert c.hash() != make_run_config("wela", label_dim=2, data=DataConfig(label_fraction=0.5)).hash()


#: ``make_run_config("wela", label_dim=3, hidden=(64, 32), data=DataConfig(variants=1, shape="disk"),
#: train=TrainConfig(epochs=60, batch_size=64, lr=1e-3)).to_dict()`` in welavae 0.1.0, verbatim.
V010_WELA_P3 = {
    "data": {"path": None, "seed": 0, "shape": "disk", "sigma_range": [2.0, 4.0], "size": 64, "source": "blobs",
             "variants": 1},
    "model": {"encoder": "mlp", "hidden": [64, 32], "image_size": 64, "label_dim": 3, "labels_in_encoder": True,
              "latent_dim": 2, "num_labels": 2},
    "name": "wela_p3",
    "objective": {"beta": 40.0, "dip_lambda_d": 10.0, "dip_lambda_od": 10.0, "gamma": 1500.0, "regulariser": "tc",
                  "tc_estimator": "mss"},
    "train": {"adam_betas": [0.9, 0.999], "adam_eps": 1e-08, "batch_size": 64, "checkpoint_every": 10,
              "data_seed": 0, "epochs": 60, "eval_batch_size": 2048, "lr": 0.001},
}


def v010_tcvae() -> dict:
    """``make_run_config("tcvae", hidden=(64, 32), data=…same…, tc_estimator="mws").to_dict()`` in 0.1.0:
    the dict above with these fields changed (checked against 0.1.0's output)."""
    d = json.loads(json.dumps(V010_WELA_P3))
    d["name"] = "tcvae"
    d["model"].update(label_dim=0, latent_dim=5)
    d["objective"].update(gamma=1.0, tc_estimator="mws")
    d["train"].update(batch_size=256, epochs=150, lr=1e-4)
    return d


def test_a_wela_config_written_by_version_0_1_0_loads_as_today_s():
    old = RunConfig.from_json(json.dumps(V010_WELA_P3))
    assert old.kind == "wela" and old.model.label_dims == (3, 3) and old.model.image_shape[:2] == (64, 64)
    assert old.model.encoder_input == "image+labels"
    # the same command today resolves to the same configuration (new fields at their defaults)
    assert old == make_run_config("wela", label_dim=3, hidden=(64, 32), data=DataConfig(variants=1, shape="disk"),
                                  train=TrainConfig(epochs=60, batch_size=64, lr=1e-3))


def test_an_unlabelled_0_1_0_config_is_the_baseline():
    old = RunConfig.from_dict(v010_tcvae())
    assert old.kind == "tcvae" and old.model.label_dims == () and not old.model.has_labels
    assert old == make_run_config("tcvae", hidden=(64, 32), data=DataConfig(variants=1, shape="disk"),
                                  tc_estimator="mws")


@pytest.mark.parametrize("p", sorted(TABLE1_GAMMA))
def test_gamma_by_the_paper_rule_is_table_1_s(p):
    gamma = make_run_config("wela", label_dim=p).objective.gamma
    assert gamma == paper_gamma(p) == TABLE1_GAMMA[p]
    # "image dimension ≈ γ × label dimension" (§4.3): Table 1's values are within 10 % of 4096
    assert abs(gamma * p - 4096) <= 0.1 * 4096


def test_gamma_outside_table_1_is_image_dimension_over_mean_label_dimension():
    assert make_run_config("wela", label_dim=9).objective.gamma == pytest.approx(4096 / 9)
    assert make_run_config("wela", label_dim=2, image_shape=(32, 32)).objective.gamma == 512.0  # 1024 / 2
    assert make_run_config("wela", label_dims=(3, 5)).objective.gamma == 1000.0  # mean p = 4: Table 1's
    assert make_run_config("wela", label_dims=(2, 3), image_shape=(10, 10)).objective.gamma == pytest.approx(40.0)
    assert make_run_config("wela", label_dim=2, gamma=150).objective.gamma == 150.0  # given, kept
    assert make_run_config("tcvae").objective.gamma == 1.0  # no label term


def test_defaults_come_from_the_registry():
    for name, kind in MODELS.items():
        c = make_run_config(name, label_dim=2) if kind.labels == "required" else make_run_config(name)
        assert (c.kind, c.model.latent_dim, c.objective.beta, c.objective.regulariser) == \
            (name, kind.latent_dim, kind.beta, kind.regulariser)
        assert c.objective.regulariser in REGULARISERS
    assert make_run_config("wela", label_dims=(2, 2, 2)).model.latent_dim == 3  # K ≥ m
    assert make_run_config("betavae", label_dim=3).name == "betavae_p3"


def test_an_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        make_run_config("vae")
    assert all(name in str(err.value) for name in MODELS)
    with pytest.raises(ValueError, match="run.kind") as err:
        RunConfig(kind="vae")
    assert all(name in str(err.value) for name in MODELS)


def test_the_baseline_takes_no_labels():
    with pytest.raises(ValueError, match="takes no labels"):
        make_run_config("tcvae", label_dim=2)


@pytest.mark.parametrize(
    "build,field",
    [
        (lambda: DataConfig(source="hdf5"), "data.source"),
        (lambda: DataConfig(source="npz"), "data.path"),
        (lambda: DataConfig(label_fraction=1.5), "data.label_fraction"),
        (lambda: ModelConfig(hidden=()), "model.hidden"),
        (lambda: ModelConfig(encoder="conv", image_shape=(15, 64)), "model.encoder"),
        (lambda: ModelConfig(latent_dim=1, label_dims=(2, 2), label_head="diagonal"), "model.latent_dim"),
        (lambda: ModelConfig(label_dims=(2, 2), label_names=("angle",)), "model.label_names"),
        (lambda: ObjectiveConfig(regulariser="mmd"), "objective.regulariser"),
        (lambda: ObjectiveConfig(gamma=-1), "objective.gamma"),
        (lambda: TrainConfig(lr=0), "train.lr"),
        (lambda: TrainConfig(checkpoint_every=0), "train.checkpoint_every"),
    ],
)
def test_a_bad_field_is_named_in_one_sentence(build, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        build()


def test_unknown_fields_in_a_file_are_refused_by_name():
    d = make_run_config("wela", label_dim=2).to_dict()
    d["train"]["learning_rate"] = 1e-3
    with pytest.raises(ValueError, match=r"config\.train: unknown fields \['learning_rate'\]"):
        RunConfig.from_dict(d)
    with pytest.raises(ValueError, match=r"unknown fields \['extra'\]"):
        RunConfig.from_dict({**make_run_config("tcvae").to_dict(), "extra": 1})


def test_a_0_2_0_config_reads_as_one_channel_and_keeps_its_hash():
    # Hashes printed by welavae 0.2.0 (commit 4ca4b81) for the same three configurations.
    assert make_run_config("wela", label_dim=2).hash() == "f5af1694bc50d21b"
    assert make_run_config("tcvae", encoder="conv", hidden=(16,)).hash() == "6c160a985adf2a6f"
    images = DataConfig(source="images", path="d", labels_path="l.csv")
    assert make_run_config("wela", label_dims=(3,), data=images, image_shape=(32, 48)).hash() == "29850ff06377459a"
    cfg = Run(V020 / "finished").config
    assert cfg.model.image_shape == (16, 16, 1) and cfg.model.arch == "mlp" and cfg.data.color == "gray"
    assert cfg.hash() == json.loads((V020 / "finished" / "status.json").read_text())["config_hash"]
    # New fields enter the hash only when they change the run.
    rgb = make_run_config("wela", label_dims=(3,), data=DataConfig(source="images", path="d", color="rgb"),
                          image_shape=(32, 48))
    assert len({rgb.hash(), make_run_config("wela", label_dims=(3,), data=images, image_shape=(32, 48, 3)).hash(),
                make_run_config("wela", label_dim=2, arch="conv").hash(), "f5af1694bc50d21b"}) == 4
    assert RunConfig.from_json(rgb.to_json()) == rgb


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


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="wela", label_dim=1), "label_dims"),
        (dict(model="tcvae", latent_dim=0), "latent_dim"),
        (dict(model="unknown"), "unknown model"),
        (dict(model="wela"), "needs weak labels"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_run_config(**kwargs)


def test_config_hash_of_existing_configs_is_unchanged_by_the_cadence_field():
    # Hashes computed by welavae before checkpoint_minutes existed (main at 4ca4b81): stored runs still resume.
    from welavae.config import make_run_config

    assert make_run_config("tcvae").hash() == "d0d6a3312569ac1e"
    assert make_run_config("wela", label_dim=3).hash() == "fd453a668a96261e"
    minutes = make_run_config("tcvae", train=TrainConfig(checkpoint_minutes=10))
    assert minutes.hash() == "d0d6a3312569ac1e" and minutes.to_dict()["train"]["checkpoint_minutes"] == 10
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        TrainConfig(checkpoint_minutes=0)
    from plans import resolved

    from welavae.experiments.plan import blobs_plan
    from welavae.experiments.presets import PRESETS

    paper = resolved(blobs_plan(PRESETS["paper"].settings, seeds=2))[0].config  # every 10 minutes, same hash
    assert paper.train.checkpoint_minutes == 10 and paper.hash() == "b0d4cc67ac64cf30"


def test_a_benchmark_config_keeps_the_0_2_0_hashes_and_hashes_its_own_fields(tmp_path):
    assert make_run_config("wela", label_dim=2).hash() == "f5af1694bc50d21b"  # 0.2.0's hash (tests/test_config.py)
    d = DataConfig(source="benchmark", dataset="sprites", data_path="s.npz")
    hashes = {make_run_config("tcvae", data=x).hash()
              for x in (d, DataConfig(source="benchmark", dataset="sprites", data_path="s.npz", subset=10),
                        DataConfig(source="benchmark", dataset="sprites", data_path="s.npz", subset=10, subset_seed=1))}
    assert len(hashes) == 3


def test_gamma_auto_starts_at_the_rule_and_records_its_target():
    c = make_run_config("wela", label_dim=3, gamma="auto")
    assert (c.objective.gamma, c.objective.gamma_target, c.objective.gamma_auto) == (1500.0, "grad:1", True)
    assert make_run_config("wela", label_dim=3, gamma="auto", gamma_target="nll:0.05").objective.gamma_target == \
        "nll:0.05"
    assert c.hash() != make_run_config("wela", label_dim=3).hash()  # an auto run is another run
    assert RunConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="--gamma auto: model 'tcvae' has no weak labels"):
        make_run_config("tcvae", gamma="auto")
    with pytest.raises(ValueError, match="--gamma-target goes with --gamma auto"):
        make_run_config("wela", label_dim=2, gamma_target="acc:0.99")
    with pytest.raises(ValueError, match="must be a number or 'auto'"):
        make_run_config("wela", label_dim=2, gamma="often")
    with pytest.raises(ValueError, match="--gamma-target: unknown kind 'mse'"):
        ObjectiveConfig(gamma_target="mse:1")


def test_the_data_fingerprint_is_recorded_compared_and_never_hashed():
    # Hashes printed by the code before fingerprints existed (99c9729), for the same two configs: a run or a
    # sweep stored under them keeps its key whatever fingerprint its data now get.
    npz = DataConfig(source="npz", path="/d/d.npz")
    bench = DataConfig(source="benchmark", dataset="sprites", data_path="/d/s.npz", subset=10)
    a = make_run_config("wela", label_dims=(3, 2), image_shape=(8, 8), data=npz)
    sprites = make_run_config("tcvae", data=bench)
    assert a.hash() == "43e16e486538a0f1" and sprites.hash() == "278f3fe321df85c0"
    one, two = (dataclasses.replace(a, data=dataclasses.replace(npz, fingerprint=f)) for f in ("npz:1", "npz:2"))
    assert one.hash() == two.hash() == a.hash()
    assert RunConfig.from_json(one.to_json()).data.fingerprint == "npz:1"
    # Same configuration, other data: not the same run.  A config from before fingerprints agrees with any.
    assert one.same_config(two) and not one.same_data(two) and not one.same_run(two)
    assert one.same_run(one) and one.same_run(a) and a.same_run(two)
    assert not one.same_run(dataclasses.replace(one, objective=dataclasses.replace(one.objective, beta=1.0)))
