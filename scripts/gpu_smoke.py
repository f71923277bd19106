"""GPU smoke test of welavae: under thirteen minutes on one GPU, every result written as a file (issue 24, item 12).

    scripts/gpu_smoke.sh [OUT]                        # on a GPU machine (makes a CUDA venv if needed)
    python scripts/gpu_smoke.py --device cpu --quick --out /tmp/smoke   # the plumbing, on a CPU

Sections (each time-boxed; one that fails or runs out of time is recorded and
the others still run), each writing ``OUT/<section>.json``, then
``OUT/summary.md`` and ``OUT/summary.json``:

gradcheck     the custom autograd functions (fused image head, Bernoulli NLL) in float64 on the device
precision     float32 with TF32 off / on vs a float64 reference: loss and gradient errors of one paper-size step
bit_identity  the same run twice on the device: MLP, the conv encoder, MWS + diagonal label head
cpu_vs_device the same run on the CPU and the device: how far the encoder means drift apart
resume        a run interrupted and resumed equals the uninterrupted one, bit for bit
cpu_encode    a run trained on the device, encoded by a process that sees no GPU (CUDA_VISIBLE_DEVICES="")
host_waits    torch.cuda.set_sync_debug_mode("error") around training steps: any host wait raises
cli           welavae train --device, evaluate, encode; welavae.load(...).to(device)
bench         welavae bench --device: paper and quick architectures, S up to 50, peak device memory
layouts       the conv VAE's two seed layouts (grouped, per-seed): time_layouts at S = 8 and 16, gray and colour,
              and the bench's conv rows in each layout, forced (bench_layout_<layout>.json)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from welavae.config import ENCODERS, DataConfig, TrainConfig, make_run_config  # noqa: E402
from welavae.nn.encode import encode_dataset  # noqa: E402
from welavae.train import train  # noqa: E402

try:  # the fused head's home after the heads move (nn/heads.py); before it, objectives/likelihoods.py
    from welavae.nn.heads import bernoulli_nll, linear_bernoulli_nll  # noqa: E402
except ImportError:
    from welavae.objectives.likelihoods import bernoulli_nll, linear_bernoulli_nll  # noqa: E402


class SectionTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise SectionTimeout("time box exceeded")


def data(n: int, side: int = 64, seed: int = 0):
    """Synthetic images in [0, 1] (n, side, side) and two 3-class labels; the smoke test needs no download."""
    rng = np.random.default_rng(seed)
    return rng.random((n, side, side), dtype=np.float32), rng.integers(0, 3, size=(n, 2))


def config(args, *, model="wela", epochs=2, **kw):
    hidden = (64, 32) if args.quick else (1200, 1200)
    return make_run_config(model, label_dims=(3, 3) if model == "wela" else None, hidden=kw.pop("hidden", hidden),
                           data=DataConfig(source="arrays"),
                           train=TrainConfig(epochs=epochs, batch_size=64 if args.quick else 256,
                                             checkpoint_every=1), **kw)


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def same_weights(a, b) -> bool:
    return all(torch.equal(x.cpu(), y.cpu()) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --------------------------------------------------------------------------- sections

def s_gradcheck(args, dev):
    g = torch.Generator().manual_seed(0)
    s, b, h, d = 2, 4, 5, 7
    hh = torch.randn(s, b, h, generator=g, dtype=torch.float64).to(dev).requires_grad_()
    w = torch.randn(s, h, d, generator=g, dtype=torch.float64).to(dev).requires_grad_()
    bias = torch.randn(s, 1, d, generator=g, dtype=torch.float64).to(dev).requires_grad_()
    x = torch.rand(b, d, generator=g, dtype=torch.float64).to(dev)
    logits = torch.randn(s, b, d, generator=g, dtype=torch.float64).to(dev).requires_grad_()
    return {"linear_bernoulli_nll": torch.autograd.gradcheck(lambda a, c, e: linear_bernoulli_nll(a, c, e, x),
                                                             (hh, w, bias)),
            "bernoulli_nll": torch.autograd.gradcheck(lambda lg: bernoulli_nll(lg, x), (logits,))}


def _one_step_grads(cfg, dev, dtype, tf32, images, labels):
    from welavae.nn import EnsembleVAE
    from welavae.objectives import objective_terms
    from welavae.train.platform import speed_settings

    model = EnsembleVAE(cfg.model, [0, 1]).to(dev, dtype)
    x = torch.from_numpy(images.reshape(len(images), -1)).to(dev, dtype)
    y = torch.from_numpy(labels).to(dev)
    noise = torch.randn(2, len(x), cfg.model.latent_dim, generator=torch.Generator().manual_seed(1)).to(dev, dtype)
    with speed_settings(dev, tf32=tf32):
        mu, logvar = model.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * noise
        nll, label_logits = model.decode_nll(z, x)
        terms = objective_terms(cfg.objective, image_nll=nll, mu=mu, logvar=logvar, z=z,
                                dataset_size=len(images), y=y, label_logits=label_logits, log_w=None)
        terms["loss"].sum().backward()
    return terms["loss"].detach().double().cpu(), [p.grad.double().cpu() for p in model.parameters()]


def s_precision(args, dev):
    cfg = config(args, tc_estimator="mws")
    images, labels = data(cfg.train.batch_size)
    loss64, grads64 = _one_step_grads(cfg, dev, torch.float64, False, images, labels)
    out = {}
    for tf32 in (False, True):
        loss, grads = _one_step_grads(cfg, dev, torch.float32, tf32, images, labels)
        rel = [float((g - r).norm() / r.norm()) for g, r in zip(grads, grads64) if r.norm() > 0]
        out[f"tf32_{'on' if tf32 else 'off'}"] = {
            "loss_max_rel_err": float(((loss - loss64).abs() / loss64.abs()).max()),
            "grad_rel_err_max": max(rel), "grad_rel_err_median": float(np.median(rel))}
    return out


def _small_run(args, dev, cfg, **kw):
    images, labels = data(256 if args.quick else 4096)
    return train(cfg, [0, 1], images, labels if cfg.model.has_labels else None, device=dev, progress=False, **kw)


def s_bit_identity(args, dev):
    out = {}
    variants = {"mlp": ({}, {}), "mws_diagonal": (dict(tc_estimator="mws", label_head="diagonal"), {})}
    if "conv" in ENCODERS:
        conv = dict(encoder="conv", hidden=(64,) if args.quick else (256,))
        for layout in ("grouped", "per-seed"):  # given: "auto" could time the two runs into different layouts
            variants[f"conv_{layout}"] = (conv, {"seed_layout": layout})
    else:
        out["conv"] = "skipped: this welavae has no conv encoder"
    for name, (kw, run_kw) in variants.items():
        cfg = config(args, **kw)
        a, b = _small_run(args, dev, cfg, **run_kw), _small_run(args, dev, cfg, **run_kw)
        out[name] = {"weights_identical": same_weights(a.model, b.model),
                     "history_identical": bool(np.array_equal(a.history, b.history))}
    return out


def s_cpu_vs_device(args, dev):
    cfg = config(args, epochs=1 if args.quick else 2)
    images, labels = data(256 if args.quick else 4096)
    runs = {d: train(cfg, [0, 1], images, labels, device=d, progress=False) for d in ("cpu", dev)}
    mus = {d: encode_dataset(r.model, images, labels)[0] for d, r in runs.items()}
    return {"mu_max_abs_diff": max_diff(mus["cpu"], mus[dev]),
            "loss_last_epoch": {d: r.history[-1, :, 0].tolist() for d, r in runs.items()},
            "note": "CPU and GPU kernels round differently; chaotic training can grow this to O(1)"}


def s_resume(args, dev):
    cfg = config(args, epochs=3)
    images, labels = data(256 if args.quick else 4096)
    whole = train(cfg, [0, 1], images, labels, device=dev, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        def stop(epoch, _):
            if epoch == 1:
                raise KeyboardInterrupt
        ckpt = Path(tmp) / "last.pt"
        try:
            train(cfg, [0, 1], images, labels, device=dev, progress=False, checkpoint=ckpt, on_epoch=stop)
        except KeyboardInterrupt:
            pass
        resumed = train(cfg, [0, 1], images, labels, device=dev, progress=False, checkpoint=ckpt)
    return {"resumed_from": resumed.resumed_from, "weights_identical": same_weights(whole.model, resumed.model),
            "history_identical": bool(np.array_equal(whole.history, resumed.history))}


def _cli(*argv, env=None):
    p = subprocess.run([sys.executable, "-m", "welavae.cli", *map(str, argv)], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    if p.returncode:
        raise RuntimeError(f"welavae {' '.join(map(str, argv))} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p.stdout


def _npz(args, tmp):
    images, labels = data(256 if args.quick else 2048)
    path = Path(tmp) / "data.npz"
    np.savez(path, images=images, labels=labels)
    return path


def _train_cli(args, dev, tmp, npz):
    run = Path(tmp) / "run"
    _cli("train", "--model", "wela", "--npz", npz, "--seeds", "0-1", "--epochs", 2, "--batch-size", 64,
         "--hidden", "64,32" if args.quick else "1200,1200", "--device", dev, "--out", run)
    return run


def s_cpu_encode(args, dev):
    with tempfile.TemporaryDirectory() as tmp:
        npz = _npz(args, tmp)
        run = _train_cli(args, dev, tmp, npz)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
        _cli("encode", run, "--npz", npz, "--out", Path(tmp) / "z.npy", "--device", "cpu", env=env)
        z, mu = np.load(Path(tmp) / "z.npy"), np.load(run / "mu.npy")
        return {"mu_max_abs_diff_cpu_encode_vs_device_encode": max_diff(z, mu), "shape": list(z.shape)}


def s_host_waits(args, dev):
    if torch.device(dev).type != "cuda":
        return {"skipped": "needs CUDA (torch.cuda.set_sync_debug_mode)"}
    from welavae.train import trainer

    cfg = config(args)
    images, labels = data(cfg.train.batch_size * 4)
    result = {}
    for mode in ("warn", "error"):
        calls = []
        real = trainer._step

        def step(*a, calls=calls, mode=mode, real=real, **k):  # sync debugging around the step only
            if len(calls) >= 1:  # after a warm-up step (lazy init, Adam's state) the step must not wait
                torch.cuda.set_sync_debug_mode(mode)
            try:
                return real(*a, **k)
            finally:
                torch.cuda.set_sync_debug_mode(0)
                calls.append(1)
        trainer._step = step
        try:
            train(cfg, [0, 1], images, labels, device=dev, progress=False)
            result[mode] = "no host wait in a training step"
        except Exception as e:
            result[mode] = f"host wait: {type(e).__name__}: {e}".splitlines()[0]
        finally:
            trainer._step = real
    return result


def s_cli(args, dev):
    import welavae

    with tempfile.TemporaryDirectory() as tmp:
        npz = _npz(args, tmp)
        run = _train_cli(args, dev, tmp, npz)
        _cli("evaluate", run, "--standard", "none")
        _cli("encode", run, "--npz", npz, "--out", Path(tmp) / "z.npy", "--device", dev)
        model = welavae.load(run).to(dev)
        images, labels = data(16)
        z = model.encode(images, labels, seed=0)
        status = json.loads((run / "status.json").read_text())
        return {"train_evaluate_encode": "ok", "load_to_device_encode_shape": list(z.shape),
                "status_environment": status.get("environment")}


def s_bench(args, dev):
    from welavae.perf.throughput import run_benchmark

    out = Path(args.out) / "bench_result.json"
    if args.quick:
        result = run_benchmark(device=dev, archs=("quick",), fast=True, json_path=out, print_table=False)
    else:
        result = run_benchmark(device=dev, archs=("paper", "quick"), seeds=(1, 16, 50), seconds=3,
                               json_path=out, print_table=False, tf32=args.tf32)
    return {"peak_gflops": result["peak_gflops"],
            "rows": [{k: r.get(k) for k in ("arch", "impl", "seeds", "seed_samples_per_s", "fraction_of_peak",
                                            "peak_device_mb", "peak_rss_mb")} for r in result["rows"]],
            "json": str(out)}


def s_layouts(args, dev):
    from welavae.nn import EnsembleVAE
    from welavae.nn.conv import LAYOUTS, time_layouts
    from welavae.perf.throughput import run_benchmark
    from welavae.train.platform import speed_settings

    seeds = (2,) if args.quick else (8, 16)
    timed = []
    for channels in (1, 3):
        cfg = make_run_config("wela", label_dims=(3, 3), arch="conv", image_shape=(64, 64, channels),
                              data=DataConfig(source="arrays"))
        x = torch.rand(64, 64 * 64 * channels, generator=torch.Generator().manual_seed(0)).to(dev)
        for s in seeds:
            model = EnsembleVAE(cfg.model, range(s)).to(dev)
            with speed_settings(dev, tf32=args.tf32):
                faster, seconds = time_layouts(model.conv_modules(), x, steps=1 if args.quick else 5)
            timed.append({"channels": channels, "seeds": s, "faster": faster, "seconds": seconds,
                          "median_seconds": {k: float(np.median(v)) for k, v in seconds.items()}})
    bench = {}
    archs = ("conv_gray",) if args.quick else ("conv_gray", "conv_rgb")
    for layout in LAYOUTS:  # the same rows with the layout forced: the welavae rows' rates side by side
        kw = dict(fast=True) if args.quick else dict(seeds=seeds, steps=20, tf32=args.tf32)
        result = run_benchmark(device=dev, archs=archs, seed_layout=layout, print_table=False,
                               json_path=Path(args.out) / f"bench_layout_{layout}.json", **kw)
        bench[layout] = [{**{k: r.get(k) for k in ("arch", "impl", "seeds", "seed_samples_per_s", "speedup_vs_naive",
                                                   "peak_device_mb")},
                          "seed_layout": (r.get("seed_layout") or {}).get("layout")} for r in result["rows"]]
    return {"time_layouts": timed, "bench": bench}


#: section → (function, time box in seconds); the boxes add up to 755 s, under thirteen minutes with the set-up
#: (``--only`` runs fewer: ``--only layouts`` ≈ 3 minutes).
SECTIONS = {"gradcheck": (s_gradcheck, 30), "precision": (s_precision, 45), "bit_identity": (s_bit_identity, 60),
            "cpu_vs_device": (s_cpu_vs_device, 45), "resume": (s_resume, 45), "cpu_encode": (s_cpu_encode, 60),
            "host_waits": (s_host_waits, 30), "cli": (s_cli, 60), "bench": (s_bench, 200),
            "layouts": (s_layouts, 180)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="gpu_smoke_out")
    p.add_argument("--quick", action="store_true", help="small networks and data (the plumbing, e.g. on a CPU)")
    p.add_argument("--tf32", action="store_true", help="bench with TF32 (default: exact float32)")
    p.add_argument("--only", default=None, help="comma-separated sections")
    args = p.parse_args(argv)
    from welavae.device import check_device
    from welavae.train.platform import environment_record

    dev = str(check_device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SECTIONS)
    summary = {"environment": environment_record(dev, tf32=args.tf32), "quick": args.quick, "sections": {}}
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        fn, limit = SECTIONS[name]
        limit = limit if not args.quick else 4 * limit  # a (shared) CPU is much slower than a GPU
        t = time.perf_counter()
        signal.alarm(limit)
        try:
            result, status = fn(args, dev), "ok"
        except Exception as e:  # recorded; the next section still runs
            result, status = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}, "failed"
        finally:
            signal.alarm(0)
        seconds = round(time.perf_counter() - t, 1)
        (out / f"{name}.json").write_text(json.dumps({"status": status, "seconds": seconds, "result": result},
                                                     indent=2, default=str) + "\n")
        summary["sections"][name] = {"status": status, "seconds": seconds}
        print(f"gpu_smoke: {name}: {status} in {seconds}s", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    lines = [f"# welavae GPU smoke test on {summary['environment']['device_name']} ({dev})", "",
             f"torch {summary['environment']['torch']}, CUDA {summary['environment']['cuda']}, "
             f"quick={args.quick}", "", "| section | status | seconds | result |", "|---|---|---|---|"]
    for name in names:
        rec = json.loads((out / f"{name}.json").read_text())
        brief = json.dumps({k: v for k, v in rec["result"].items() if k != "traceback"}, default=str)
        lines.append(f"| {name} | {rec['status']} | {rec['seconds']} | `{brief[:300]}` |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return 0 if all(s["status"] == "ok" for s in summary["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
