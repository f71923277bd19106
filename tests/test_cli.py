"""welavae.cli: every verb's --help, bad input in one line (exit 2), refusals that write nothing, whole runs.

Known answers (issue 20): the exit status (0 done, 1 failed during work, 2
refused, 143 SIGTERM), the files on disk before and after (byte for byte).
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import (
    LOCK_NAME,
    TINY,
    _env,
    _error_line,
    _files,
    _tiny_npz,
    _tracking,
    _wait_for,
    colour_blobs,
    fake_gpus,
    write_png,
)
from PIL import Image

import welavae
from welavae import __version__, cli
from welavae.cli import main
from welavae.data import to_float
from welavae.experiments import presets
from welavae.experiments.sweep import SweepFailed
from welavae.metrics import pair_mse
from welavae.objectives.ccvae import ccvae_predict
from welavae.objectives.s2 import s2_predict
from welavae.run import Run

VERBS = ["data", "train", "evaluate", "plot", "reproduce", "bench"]


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "welavae.cli", *args], capture_output=True, text=True, **kw)


def run_in(tmp_path, *args):
    return run(*args, cwd=tmp_path)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_help(verb):
    r = run(verb, "--help")
    assert r.returncode == 0 and "usage: welavae " + verb in r.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--model", "wela", "--label-dim", "1", "--out", "x"], "--label-dim"),
        (["train", "--model", "nope", "--out", "x"], "invalid choice"),
        (["train", "--model", "tcvae", "--latent-dim", "0", "--out", "x"], "latent_dim"),
        (["train", "--model", "tcvae", "--batch-size", "1", "--out", "x"], "batch_size"),
        (["train", "--model", "tcvae", "--seeds", "3-1", "--out", "x"], "seeds"),
        (["train", "--model", "tcvae", "--gamma", "auto", "--variants", "1", "--out", "x"],
         "--gamma auto: model 'tcvae' has no weak labels"),
        (["train", "--model", "wela", "--label-dim", "2", "--gamma-target", "acc:0.99", "--variants", "1", "--out", "x"],
         "--gamma-target goes with --gamma auto"),
        (["train", "--model", "wela", "--label-dim", "2", "--gamma", "auto", "--gamma-target", "acc:1.5",
          "--variants", "1", "--out", "x"], "--gamma-target: the accuracy in 'acc:1.5' must lie strictly between"),
        (["train", "--model", "wela", "--label-dim", "2", "--gamma", "auto", "--gamma-target", "nll:0",
          "--variants", "1", "--out", "x"], "--gamma-target: the NLL in 'nll:0' must be"),
        (["train", "--model", "wela", "--label-dim", "2", "--gamma", "big", "--out", "x"], "expected a number or auto"),
        (["data", "--variants", "0"], "integer >= 1"),
        (["data", "--label-dim", "1", "--variants", "1"], "--label-dim"),
        (["reproduce", "--models", "vae", "--out", "x"], "unknown model"),
        (["reproduce", "--address", "auto", "--out", "x"], "--address only applies"),
        (["evaluate", "/nonexistent/run"], "config.json is missing"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, needle, tmp_path):
    if args and args[0] in ("data", "train", "reproduce"):
        args = [*args, "--data-dir", str(tmp_path / "cache")]
    r = run_in(tmp_path, *args)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("welavae: error:") and needle in lines[-1], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_data_builds_cache_and_figures(tmp_path):
    out = tmp_path / "fig"
    assert main(["data", "--variants", "1", "--data-dir", str(tmp_path / "cache"), "--out", str(out), "--label-dim", "3"]) == 0
    assert (out / "samples.png").stat().st_size > 1000
    assert (out / "label_regions_p3.png").stat().st_size > 1000
    assert len(list((tmp_path / "cache").glob("blobs-*.npz"))) == 1


def test_train_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "--model", "wela", "--label-dim", "2", "--seeds", "0-1", "--epochs", "1", "--batch-size", "64",
               "--lr", "1e-3", "--hidden", "16,8", "--variants", "1", "--data-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert rc == 0
    mu = np.load(out / "mu.npy")
    assert mu.shape == (2, 4096, 2) and mu.dtype == np.float32
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["label_dims"] == [2, 2] and cfg["objective"]["gamma"] == 2000.0
    assert (out / "checkpoints" / "last.pt").exists()
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,seed,loss") and len(lines) == 1 + 2
    # The same command again resumes from the finished checkpoint: nothing to train.
    assert main(["train", "--model", "wela", "--label-dim", "2", "--seeds", "0-1", "--epochs", "1", "--batch-size", "64",
                 "--lr", "1e-3", "--hidden", "16,8", "--variants", "1", "--data-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    assert np.array_equal(np.load(out / "mu.npy"), mu)


@pytest.mark.parametrize("verb", [["train", "--model", "tcvae", "--out", "x"], ["reproduce"], ["bench"]])
def test_tf32_flag_defaults_off(verb):
    from welavae.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(verb).tf32 is False
    assert parser.parse_args(verb + ["--tf32"]).tf32 is True
    assert parser.parse_args(verb + ["--no-tf32"]).tf32 is False


@pytest.mark.parametrize("verb", [["train", "--model", "tcvae", "--out", "x"], ["reproduce"], ["bench"]])
def test_seed_layout_flag_defaults_to_auto(verb, capsys):
    from welavae.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(verb).seed_layout == "auto"
    assert parser.parse_args(verb + ["--seed-layout", "per-seed"]).seed_layout == "per-seed"
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(verb + ["--seed-layout", "loop"])
    assert exit_.value.code == 2 and "invalid choice: 'loop'" in capsys.readouterr().err


def test_reproduce_hands_the_seed_layout_to_the_sweep_and_bench_pairs_need_a_baseline(tmp_path, monkeypatch, capsys):
    seen = {}

    def recording(plan, **kw):
        seen.update(kw)
        (tmp_path / "table.md").write_text("the table\n")
        return []

    monkeypatch.setattr(presets, "run_plan", recording)
    assert cli.main(["reproduce", "--out", str(tmp_path), "--seed-layout", "grouped"]) == 0
    assert seen["seed_layout"] == "grouped"
    assert cli.main(["bench", "--pairs", "3"]) == 2
    assert capsys.readouterr().err.strip().endswith("welavae: error: --pairs goes with --baseline REF")


def test_refusals_leave_no_folder_and_the_corrected_command_runs(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    base = ["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(out)]
    refused = [
        (["--batch-size", "128"], "--batch-size"),  # N = 64
        (["--label-fraction", "0.001"], "--label-fraction"),  # round(0.064) = 0 labels left
        (["--seeds", "99999999999999999999"], "--seeds"),  # > 2**64
        (["--device", "tpu9"], "--device"),
        (["--gamma", "nan"], "gamma"),
        (["--beta", "inf"], "beta"),
        (["--lr", "inf"], "lr"),
        (["--epochs", "0"], "epochs"),
        (["--latent-dim", "1"], "K >= m"),  # two weak labels, the dense head
        (["--npz", str(tmp_path / "missing.npz")], "missing.npz"),
    ]
    for extra, needle in refused:
        code = main(base + extra)
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and needle in line, (extra, line)
        assert not out.exists(), (extra, sorted(p.name for p in out.iterdir()))
    assert main(base) == 0  # not blocked by anything a refusal left
    assert Run(out).finished()


def test_an_existing_file_as_out_is_one_sentence(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    f = tmp_path / "taken"
    f.write_text("mine")
    code = main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(f)])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and str(f) in line and f.read_text() == "mine"


@pytest.mark.parametrize("err", [
    PermissionError(13, "Permission denied", "/r/run/config.json"),
    OSError(30, "Read-only file system", "/r/run/config.json"),
    OSError(28, "No space left on device", "/r/run/config.json"),
    FileExistsError(17, "File exists", "/r/run/config.json"),
    IsADirectoryError(21, "Is a directory", "/r/run/config.json"),
    NotADirectoryError(20, "Not a directory", "/r/run/config.json"),
])
def test_os_errors_are_one_sentence_with_the_path_and_exit_2(err, monkeypatch, capsys):
    import welavae.cli as cli

    def fail(args):
        raise err

    monkeypatch.setattr(cli, "_cmd_select", fail)  # any verb: the boundary is main()'s
    code = main(["select", "somewhere"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and "/r/run/config.json" in line


def _mount_tmpfs(d: Path, options: str):
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'}): needs root and mount rights")


def test_a_read_only_file_system_is_one_sentence(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "size=1m,ro")
    try:
        code = main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(ro / "run")])
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and "read-only" in line and str(ro / "run") in line
    finally:
        subprocess.run(["umount", str(ro)])


def test_a_full_disk_is_one_sentence_and_the_run_resumes(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    args = ["train", "--model", "wela", "--npz", str(npz), "--hidden", "256", "--latent-dim", "2",
            "--batch-size", "16", "--epochs", "2", "--checkpoint-every", "1"]
    assert main(args + ["--out", str(tmp_path / "ref")]) == 0
    ckpt = (tmp_path / "ref" / "checkpoints" / "last.pt").stat().st_size  # about 0.8 MB
    fs = tmp_path / "fs"
    _mount_tmpfs(fs, "size=4m")
    try:
        # Leave room for the first checkpoint and the small files, not for a second checkpoint beside it.
        st = os.statvfs(fs)
        (fs / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - int(1.5 * ckpt) - 64 * 1024))
        out = fs / "run"
        code = main(args + ["--out", str(out)])
        line = _error_line(capsys.readouterr().err)
        assert code == 1 and "no space left" in line and str(out / "checkpoints" / "last.pt") in line, line
        from welavae.checkpoint import load_checkpoint

        assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1  # the last checkpoint is whole
        assert not (out / LOCK_NAME).exists() and not [p for p in out.rglob("*.tmp")]
        (fs / "filler").unlink()
        assert main(args + ["--out", str(out)]) == 0  # the same command resumes
        assert json.loads((out / "status.json").read_text())["resumed_from"] == 1
    finally:
        subprocess.run(["umount", str(fs)])


def test_sigterm_is_a_message_a_valid_checkpoint_and_143_then_encode_refuses_the_unfinished_run(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz", n=1024)  # 64 steps an epoch: time to signal after the first
    out = tmp_path / "run"
    args = ["train", "--model", "wela", "--npz", str(npz), "--hidden", "32", "--latent-dim", "2",
            "--batch-size", "16", "--epochs", "5", "--checkpoint-every", "1", "--out", str(out)]
    p = subprocess.Popen([sys.executable, "-m", "welavae.cli", *args], env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "checkpoints" / "last.pt", p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "SIGTERM" in _error_line(err.replace("welavae: interrupted", "welavae: error: interrupted"))
    from welavae.checkpoint import load_checkpoint

    assert 1 <= load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] < 5
    assert not (out / LOCK_NAME).exists() and not Run(out).finished()

    enc = ["encode", str(out), "--npz", str(npz)]
    assert main(enc + ["--out", str(tmp_path / "z.npy")]) == 2
    assert "--allow-unfinished" in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "z.npy").exists()
    assert main(enc + ["--out", str(tmp_path / "z.npy"), "--allow-unfinished"]) == 0
    assert np.load(tmp_path / "z.npy").shape == (1, 1024, 2)
    capsys.readouterr()
    assert main(enc + ["--out", str(tmp_path), "--allow-unfinished"]) == 2  # an existing directory
    assert "is a directory" in _error_line(capsys.readouterr().err)

    assert main(args) == 0  # the same command resumes
    assert json.loads((out / "status.json").read_text())["resumed_from"] >= 1


def test_cli_trains_on_a_colour_folder_and_encodes_it(tmp_path, capsys):
    images, labels = colour_blobs(64)
    folder = tmp_path / "pngs"
    folder.mkdir()
    rows = ["file,row,colour"]
    for i, (img, lab) in enumerate(zip(images, labels)):
        write_png(folder / f"{i:03d}.png", np.round(img * 255), "RGB")
        rows.append(f"{i:03d}.png,{lab[0]},{'rgb'[lab[1]]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--model", "wela", "--images", str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--color", "rgb", "--hidden", "16", "--epochs", "1", "--batch-size", "32", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["color"] == "rgb" and cfg["model"]["image_shape"] == [16, 16, 3]
    assert main(["encode", str(run), "--images", str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(tmp_path / "z.npy")]) == 0  # read in colour, as the model's data were
    assert np.allclose(np.load(tmp_path / "z.npy"), np.load(run / "mu.npy"), atol=1e-6)
    # a folder has no true factors: plot draws the traversals of the seed `select` ranks first, in colour
    capsys.readouterr()
    assert main(["plot", str(run), "--out", str(tmp_path / "fig")]) == 0
    (png,) = (tmp_path / "fig").glob("*.png")
    assert png.name == "wela_seed0.png" and Image.open(png).mode in ("RGB", "RGBA")
    drawn = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert (np.abs(drawn[..., 0] - drawn[..., 1]) > 30).any()  # not a gray picture
    capsys.readouterr()
    assert main(["train", "--model", "wela", "--npz", "x.npz", "--color", "rgb", "--out", str(tmp_path / "o")]) == 2
    assert "--color goes with --images" in capsys.readouterr().err and not (tmp_path / "o").exists()


KEEP = ["--keep", "shape=0,1", "--keep", "scale=5", "--keep", "orientation=0", "--keep", "posX=0,10,20,31",
        "--keep", "posY=0,31"]


GRID = "1,2,1,1,4,2"  # the sizes of that reduced grid: 16 images


def test_data_writes_a_reduced_twin_and_train_reads_it_with_weak_labels(tmp_path, capsys):
    twin = tmp_path / "sprites.npz"
    assert main(["data", "--dataset", "sprites", "--out", str(twin), *KEEP]) == 0
    assert f"16 images of 64x64 written to {twin}" in capsys.readouterr().out
    out = tmp_path / "run"
    rc = main(["train", "--model", "wela", "--dataset", "sprites", "--data-path", str(twin), "--grid", GRID,
               "--subset", "12", "--subset-seed", "1", "--weak-labels", "bins(posX):2, bins(shape):2",
               "--seeds", "0-1", "--epochs", "2", "--batch-size", "4", "--hidden", "8", "--out", str(out)])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    want = {"source": "benchmark", "dataset": "sprites", "data_path": str(twin), "subset": 12,
            "subset_seed": 1, "weak_labels": "bins(posX):2, bins(shape):2",
            "grid": [1, 2, 1, 1, 4, 2]}
    assert {k: cfg["data"][k] for k in want} == want
    assert cfg["model"]["label_dims"] == [2, 2] and cfg["model"]["image_shape"] == [64, 64, 1]
    assert np.load(out / "mu.npy").shape == (2, 12, 2)
    # evaluated on the labelled pair (posX, shape) — bins of each: a Cartesian pair — from factors.npy,
    # which holds all six factors' classes: both labels' accuracies and both systems' MSE
    assert main(["evaluate", str(out), "--standard", "none"]) == 0
    rows = json.loads((out / "metrics.json").read_text())["seeds"]
    assert len(rows) == 2 and all(len(r["accuracy"]) == 2 for r in rows)
    f, mu = np.load(out / "factors.npy"), np.load(out / "mu.npy")
    for r, m in zip(rows, mu):
        want = pair_mse(m, f[:, [4, 1]], widths=(3, 1), system="cartesian")
        assert r["cartesian"]["mse"] == pytest.approx(want.mse) and "polar" in r and "rotated" not in r


def test_dataset_excludes_npz_and_images_and_its_options_need_it(tmp_path, capsys):
    base = ["train", "--model", "tcvae", "--epochs", "1", "--out", str(tmp_path / "run")]
    for extra, msg in (
        (["--dataset", "sprites", "--data-path", "s.npz", "--npz", "x.npz"], "not both"),
        (["--weak-labels", "bins(posX):2", "--npz", "x.npz"], "--weak-labels goes with --dataset NAME (or Blobs"),
        (["--weak-labels", "bins(c1):2"], "--weak-labels: model 'tcvae' (β-TCVAE) takes no weak labels"),
        (["--dataset", "sprites", "--data-dir", str(tmp_path / "nodata")],  # the published name in the data dir
         f"{tmp_path / 'nodata' / 'sprites.npz'} does not exist: the dSprites twin is the file sprites.npz"),
    ):
        assert main(base + extra) == 2
        assert msg in capsys.readouterr().err
    assert main(["data", "--dataset", "sprites", "--out", str(tmp_path / "t.npz"), "--keep", "size=1"]) == 2
    assert "unknown factor 'size'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


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


@pytest.mark.parametrize("argv", [["train", "--model", "tcvae", "--device", "gpu"],
                                  ["train", "--model", "tcvae", "--device", "cuda:7"],
                                  ["bench", "--device", "cuda:7"],
                                  ["reproduce", "--device", "cuda:7"]])
def test_cli_refuses_a_bad_device_with_exit_2_and_writes_nothing(monkeypatch, tmp_path, capsys, argv):
    from welavae.cli import main

    fake_gpus(monkeypatch, 1)
    out = tmp_path / "out"
    code = main(argv + ["--out", str(out)] if argv[0] != "bench" else argv + ["--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("welavae: error: ") and err.count("\n") == 1, err
    assert not out.exists()


def write_folder(root, images, labels, names):
    root.mkdir()
    rows = ["file,angle,distance"]
    for i, (img, lab) in enumerate(zip(images, labels)):
        Image.fromarray((img * 255).round().astype(np.uint8), mode="L").save(root / names[i])
        rows.append(",".join([names[i]] + ["" if v < 0 else ["low", "high"][v] for v in lab]))
    (root.parent / f"{root.name}.csv").write_text("\n".join(rows) + "\n")
    return root.parent / f"{root.name}.csv"


def test_cli_trains_on_a_png_folder_and_encodes_new_unlabelled_images(small, tmp_path, capsys):
    images, labels, _ = small
    partial = labels[:256].copy()
    partial[::3, 1] = -1  # some empty cells
    csv = write_folder(tmp_path / "train", images[:256], partial, [f"{i:04d}.png" for i in range(256)])
    out = tmp_path / "run"
    assert main(["train", "--model", "wela", "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--encoder-input", "image", "--hidden", "32,16", "--epochs", "1", "--batch-size", "64",
                 "--seeds", "0-1", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["label_classes"] == [["high", "low"], ["high", "low"]]  # sorted strings
    new = tmp_path / "new"
    new.mkdir()
    for i in range(5):
        Image.fromarray((images[300 + i] * 255).round().astype(np.uint8), mode="L").save(new / f"n{i}.png")
    assert main(["encode", str(out), "--images", str(new), "--out", str(tmp_path / "z.npy"), "--seed", "1"]) == 0
    z = np.load(tmp_path / "z.npy")
    assert z.shape == (5, 2)
    as_png = np.round(images[300:305] * 255) / 255  # 8-bit, as written
    assert np.allclose(z, welavae.load(out).encode(as_png, seed=1), atol=1e-6)


def test_cli_refuses_bad_data_and_label_conditioned_encoding_without_writing(small, tmp_path, capsys):
    images, labels, _ = small
    csv = write_folder(tmp_path / "train", images[:128], labels[:128], [f"{i:04d}.png" for i in range(128)])
    csv.write_text(csv.read_text() + "missing.png,low,low\n")
    out = tmp_path / "never"
    assert main(["train", "--model", "wela", "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "row 130: 'missing.png' is not a file" in err
    assert not out.exists()
    csv.write_text("\n".join(csv.read_text().splitlines()[:-1]) + "\n")
    run = tmp_path / "paper"
    assert main(["train", "--model", "wela", "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--hidden", "16", "--epochs", "1", "--batch-size", "64", "--out", str(run)]) == 0
    assert main(["encode", str(run), "--images", str(tmp_path / "train"), "--out", str(tmp_path / "z.npy")]) == 2
    err = capsys.readouterr().err
    assert "--encoder-input image" in err and not (tmp_path / "z.npy").exists()
    assert main(["encode", str(run), "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--out", str(tmp_path / "z.npy")]) == 0
    assert np.allclose(np.load(tmp_path / "z.npy"), np.load(run / "mu.npy"), atol=1e-6)


def test_cli_names_the_failed_models_in_one_line_and_exits_1(tmp_path, monkeypatch, capsys):
    def failing(*args, **kw):
        (tmp_path / "table.md").write_text("the table\n")
        raise SweepFailed({"wela_p3": "RuntimeError: boom", "wela_p5": "all 2 finished seeds diverged"}, [])

    monkeypatch.setattr(presets, "run_plan", failing)
    assert cli.main(["reproduce", "--out", str(tmp_path), "--seeds-per-task", "2", "--tc-estimator", "mws"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("welavae: error: 2 models failed (wela_p3, wela_p5)")
    assert "run the same command again" in err[0]


# ------------------------------------------------------------------ the peers (docs/peers.md)
def test_the_peers_bad_input_is_one_sentence_and_writes_nothing(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")  # labels of 3 and 2 classes
    unlabelled = tmp_path / "u.npz"
    np.savez(unlabelled, images=np.load(npz)["images"])
    out = tmp_path / "run"
    s2 = ["train", "--model", "s2tcvae", "--npz", str(npz), *TINY, "--out", str(out)]
    cc = ["train", "--model", "ccvae", "--npz", str(npz), *TINY, "--out", str(out)]
    refused = [
        (["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(out), "--supervised-loss", "xent"],
         "--supervised-loss goes with --model s2tcvae"),
        (cc + ["--gamma-sup", "2"], "--gamma-sup goes with --model s2tcvae"),
        (s2 + ["--npz", str(unlabelled)], "needs weak labels"),
        (cc + ["--npz", str(unlabelled)], "needs weak labels"),
        (s2 + ["--latent-dim", "1"], "K >= m = 2"),
        (cc + ["--latent-dim", "1"], "K >= m = 2"),
        (s2 + ["--encoder-input", "image+labels"], "reads the images only"),
        (cc + ["--encoder-input", "image+labels"], "reads the images only"),
        (s2 + ["--label-head", "diagonal"], "has no label decoder"),
        (s2 + ["--gamma", "3"], "its labels' weight is --gamma-sup"),
        (cc + ["--gamma", "auto"], "which CCVAE has not"),
        (cc + ["--beta", "3"], "no total-correlation term"),
        (s2 + ["--gamma-sup", "nan"], "gamma_sup"),
    ]
    for argv, needle in refused:
        code = main(argv)
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and needle in line, (argv, line)
        assert not out.exists(), argv
    with pytest.raises(SystemExit) as exit_:  # argparse: the four losses only
        main(s2 + ["--supervised-loss", "hinge"])
    assert exit_.value.code == 2 and "invalid choice: 'hinge'" in capsys.readouterr().err
    assert main(s2 + ["--supervised-loss", "l2"]) == 0 and Run(out).finished()


def test_the_peers_train_on_the_twin_in_colour_and_are_evaluated_with_their_own_predictors(tmp_path, capsys):
    twin = tmp_path / "sprites.npz"
    assert main(["data", "--dataset", "sprites", "--out", str(twin), *KEEP]) == 0
    bench = ["--dataset", "sprites", "--data-path", str(twin), "--grid", GRID, "--weak-labels",
             "angle(posX,posY):2, distance(posX,posY):2", "--seeds", "0-1", "--epochs", "2", "--batch-size", "4"]
    runs = {"s2": ["--model", "s2tcvae", "--supervised-loss", "embed", "--hidden", "8", "--latent-dim", "3",
                   "--label-fraction", "0.5"],
            "cc": ["--model", "ccvae", "--arch", "conv", "--latent-dim", "3"]}
    for name, argv in runs.items():
        assert main(["train", *argv, *bench, "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        assert main(["evaluate", str(tmp_path / name), "--standard", "all"]) == 0
        rows = json.loads((tmp_path / name / "metrics.json").read_text())["seeds"]
        assert all(set(r["standard"]) == {"factors", "label_coordinates"} and "polar" in r for r in rows)
        model = welavae.load(tmp_path / name)
        mu = np.load(tmp_path / name / "mu.npy")
        params = model.ensemble.label_side.objective_inputs()
        with torch.no_grad():
            want = (s2_predict("embed", torch.from_numpy(mu), label_sizes=(2, 2), embeddings=params["embeddings"])
                    if name == "s2" else ccvae_predict(torch.from_numpy(mu), params["weight"], params["bias"]))
        assert np.array_equal(np.load(tmp_path / name / "label_pred.npy"), want.numpy())
        # the encoder reads the images only: encoding needs no labels
        assert np.allclose(model.encode(to_float(Run(tmp_path / name).data().images)), mu, atol=1e-6)
    observed = np.load(tmp_path / "s2" / "observed.npy")
    assert 0 < observed.mean() < 1  # --label-fraction 0.5: the hidden labels' accuracy is reported apart
    assert json.loads((tmp_path / "s2" / "metrics.json").read_text())["seeds"][0]["accuracy_hidden"] is not None
    # colour: S2 on RGB images
    images, labels = colour_blobs(64)
    np.savez(tmp_path / "rgb.npz", images=images, labels=labels)
    assert main(["train", "--model", "s2tcvae", "--npz", str(tmp_path / "rgb.npz"), *TINY,
                 "--out", str(tmp_path / "rgb")]) == 0
    assert json.loads((tmp_path / "rgb" / "config.json").read_text())["model"]["image_shape"] == [16, 16, 3]


# ------------------------------------------------------------------------ issue 31: refusals before the first write

def _refused(argv, out, capsys, needle):
    """main(argv) refuses: exit 2, one line holding ``needle``, and ``out`` does not exist."""
    try:
        code = main(argv)
    except SystemExit as e:  # a flag argparse refuses: its one line, exit 2
        code = e.code
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and needle in line, line
    assert not Path(out).exists()
    return line


def test_a_run_that_cannot_fit_in_memory_is_refused_before_anything_is_written(tmp_path, capsys):
    # Each of these reached the allocator before (a traceback, or the OOM killer): now one sentence naming the flag.
    npz = _tiny_npz(tmp_path / "d.npz", n=16, size=64)
    out = tmp_path / "run"
    base = ["train", "--model", "tcvae", "--npz", str(npz), "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    _refused(base + ["--seeds", "0-99999"], out, capsys, "--seeds (100,000 seeds): this run needs about")
    line = _refused(base + ["--hidden", "100000000"], out, capsys, "--hidden 100000000: this run needs about")
    assert "use smaller --hidden layers" in line
    big = tmp_path / "big.npz"
    np.savez_compressed(big, images=np.zeros((2, 4096, 4096), np.float32))  # two 4096 × 4096 images
    line = _refused(["train", "--model", "tcvae", "--npz", str(big), "--batch-size", "2", "--out", str(out)], out,
                    capsys, "--hidden 1200,1200: this run needs about")
    assert "each unit of the first reads all 16,777,216 values of an image" in line
    # --subset 1000000000 with a mistyped --grid: refused before the file is opened (here it does not even exist).
    _refused(["train", "--model", "tcvae", "--dataset", "sprites", "--data-path", str(tmp_path / "twin.npz"),
              "--grid", "1,3,6,40,3200,3200", "--subset", "1000000000", "--out", str(out)], out, capsys,
             "--subset 1000000000: reading 1,000,000,000 images")


def test_flags_that_would_be_ignored_or_write_into_the_working_directory_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    npz = _tiny_npz(tmp_path / "d.npz")
    line = _refused(["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", ""], tmp_path / "never",
                    capsys, "argument --out: expected a path, got an empty string")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"], line  # nothing written into "."
    twin = tmp_path / "twin.npz"
    assert main(["data", "--dataset", "sprites", "--out", str(twin), *KEEP]) == 0
    capsys.readouterr()
    bench = ["train", "--dataset", "sprites", "--data-path", str(twin), "--grid", GRID, "--epochs", "1",
             "--batch-size", "4", "--hidden", "8", "--out", str(tmp_path / "run")]
    _refused([*bench, "--model", "tcvae", "--weak-labels", "bins(posX):2, bins(shape):2"], tmp_path / "run", capsys,
             "--weak-labels: model 'tcvae' (β-TCVAE) takes no weak labels")
    _refused([*bench, "--model", "tcvae", "--subset-seed", "3"], tmp_path / "run", capsys,
             "--subset-seed goes with --subset N")
    _refused([*bench, "--model", "tcvae", "--subset", "8", "--subset-seed", "-1"], tmp_path / "run", capsys,
             "argument --subset-seed: expected an integer >= 0, got -1")


def test_encode_refuses_an_out_that_is_its_input_or_in_a_run_and_a_run_being_trained(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    assert main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--encoder-input", "image",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    data, files = npz.read_bytes(), _files(run)
    for out, needle in [(npz, f"--out {npz} is the input --npz {npz}; it would be replaced by the encodings"),
                        (run / "mu.npy", f"--out {run / 'mu.npy'} lies in the run directory {run}"),
                        (run / "checkpoints" / "z.npy", f"lies in the run directory {run}")]:
        assert main(["encode", str(run), "--npz", str(npz), "--out", str(out)]) == 2, out
        assert needle in _error_line(capsys.readouterr().err)
    assert npz.read_bytes() == data and _files(run) == files
    # A run another process is writing (its lock, held by a live process on this host) is not read.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": __import__("socket").gethostname(),
                                                 "command": "welavae train", "started": "now", "token": "t"}))
        z = tmp_path / "z.npy"
        assert main(["encode", str(run), "--npz", str(npz), "--out", str(z)]) == 2
        assert f"is in use by PID {holder.pid}" in _error_line(capsys.readouterr().err) and not z.exists()
    finally:
        holder.kill()
        holder.wait()
    (run / LOCK_NAME).unlink()
    assert main(["encode", str(run), "--npz", str(npz), "--out", str(tmp_path / "z.npy")]) == 0
    assert not (run / LOCK_NAME).exists()  # read under its lock, released


def test_plot_and_evaluate_work_from_another_working_directory(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _tiny_npz(a / "d.npz")
    r = run_in(a, "train", "--model", "wela", "--npz", "d.npz", *TINY, "--out", "R")  # relative paths
    assert r.returncode == 0, r.stderr
    assert json.loads((a / "R" / "config.json").read_text())["data"]["path"] == str(a / "d.npz")
    for verb in (["evaluate", "../a/R", "--standard", "none"], ["plot", "../a/R", "--out", "fig"]):
        r = run_in(b, *verb)
        assert r.returncode == 0, r.stderr
    assert (a / "R" / "metrics.json").exists() and list((b / "fig").glob("*.png"))


# ------------------------------------------------------------------------ issue 31: one error boundary

def _boundary(monkeypatch, capsys, exc, argv, where="resolve"):
    """Run main(argv) with ``exc`` raised by the step named ``where`` (resolve: before anything is written;
    train: inside the locked run directory); (exit status, the one line)."""
    def fail(*args, **kwargs):
        raise exc() if callable(exc) else exc

    if where == "resolve":
        monkeypatch.setattr(cli, "resolve", fail)
    else:
        import welavae.train.rundir as rundir

        monkeypatch.setattr(rundir, "train", fail)
    code = main(argv)
    return code, _error_line(capsys.readouterr().err)


ALLOCATOR = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
             "allocate 1649267441664 bytes. Error code 12 (Cannot allocate memory)")


@pytest.mark.parametrize("exc,status,needle", [
    (MemoryError, 2, "out of memory: this machine could not allocate what the run asked for; use fewer --seeds"),
    (RuntimeError(ALLOCATOR), 2, "out of memory: this machine could not allocate 1.5 TiB; use fewer --seeds, smaller "
                                 "--hidden layers, a smaller --batch-size or a --subset of the data"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total capacity)"), 2,
     "out of memory: the CUDA device could not allocate 2.00 GiB"),
    (ModuleNotFoundError("reading 3dshapes.h5 needs the optional package h5py: pip install 'wela-vae[benchmarks]'"),
     2, "error: reading 3dshapes.h5 needs the optional package h5py: pip install 'wela-vae[benchmarks]'"),
    (ModuleNotFoundError("No module named 'ray'", name="ray"), 2, "pip install 'wela-vae[ray]'"),
    (OverflowError("Python int too large to convert to C long"), 2, "a number is too large for the machine"),
    (__import__("zlib").error("Error -3 while decompressing data: invalid stored block lengths"), 2,
     "--npz {npz}: a file could not be read (error: Error -3 while decompressing data"),
    (Image.DecompressionBombError("Image size (400000000 pixels) exceeds limit"), 2,
     "a file could not be read (DecompressionBombError"),
])
def test_every_error_a_user_can_cause_is_one_sentence(tmp_path, monkeypatch, capsys, exc, status, needle):
    npz = _tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    code, line = _boundary(monkeypatch, capsys, exc, ["train", "--model", "wela", "--npz", str(npz), *TINY,
                                                      "--out", str(out)])
    assert (code, line.count("welavae: error:")) == (status, 1) and needle.format(npz=npz) in line, line
    assert not out.exists()


def test_out_of_memory_while_training_exits_1_keeping_what_was_written(tmp_path, monkeypatch, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    code, line = _boundary(monkeypatch, capsys, RuntimeError(ALLOCATOR),
                           ["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(out)], where="train")
    assert code == 1 and "out of memory" in line
    assert (out / "config.json").exists() and not (out / LOCK_NAME).exists()


def test_an_encrypted_zip_member_reaching_the_boundary_is_a_file_that_could_not_be_read(tmp_path, monkeypatch,
                                                                                           capsys):
    import zipfile

    npz = _tiny_npz(tmp_path / "d.npz")
    raw = bytearray(npz.read_bytes())
    with zipfile.ZipFile(npz) as z:
        first = z.infolist()[0]
    central = raw.index(b"PK\x01\x02")  # the central directory's first entry: the first member's (file name at 46)
    assert raw[central + 46:central + 46 + len(first.filename)] == first.filename.encode()
    raw[first.header_offset + 6] |= 1  # the "encrypted" flag (APPNOTE 4.4.4, bit 0), in the local header
    raw[central + 8] |= 1  # and in the central directory, which zipfile reads
    npz.write_bytes(bytes(raw))

    def read(*args, **kwargs):  # as a reader that opens the member without catching zipfile's own errors
        with zipfile.ZipFile(npz) as z:
            z.open(first.filename).read()

    monkeypatch.setattr(cli, "resolve", read)
    assert main(["train", "--model", "wela", "--npz", str(npz), "--out", str(tmp_path / "run")]) == 2
    assert f"--npz {npz}: a file could not be read (RuntimeError: File" in _error_line(capsys.readouterr().err)


def test_a_bug_still_shows_its_traceback(tmp_path, monkeypatch):
    # The boundary turns what a user's input or machine can cause into a sentence, not every exception:
    # a TypeError, an IndexError or a RuntimeError of our own code is a bug, and its traceback is the report.
    npz = _tiny_npz(tmp_path / "d.npz")
    for bug in (TypeError("unsupported operand"), IndexError("index 3 is out of bounds"), RuntimeError("shape")):
        def fail(*args, bug=bug, **kwargs):
            raise bug

        monkeypatch.setattr(cli, "resolve", fail)
        with pytest.raises(type(bug)):
            main(["train", "--model", "wela", "--npz", str(npz), "--out", str(tmp_path / "run")])
