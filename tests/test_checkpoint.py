"""welavae.checkpoint: a checkpoint written by welavae 0.1.0 (the decoder's output layer whole) loads and resumes."""
import torch
from fixtures import blobs_cfg as cfg
from fixtures import train_interrupted

from welavae.checkpoint import load_checkpoint
from welavae.train import train


def _as_version_0_1_0(state: dict) -> dict:
    """A checkpoint written before the output heads were split: the decoder's last layer whole, Adam state merged."""
    model, opt = state["model"], state["optimizer"]
    keys = list(model)
    prefix = "decoder.2."
    heads = [k for k in keys if k.startswith(prefix)]  # weight0, bias0, weight1, bias1
    first = keys.index(heads[0])
    old_keys = keys[:first] + [prefix + "weight", prefix + "bias"] + keys[first + len(heads):]
    merged = {}
    for name in ("weight", "bias"):
        parts = [prefix + f"{name}{j}" for j in (0, 1)]
        merged[prefix + name] = (torch.cat([model[p] for p in parts], -1),
                                 [keys.index(p) for p in parts])
    old_model, old_state = {}, {}
    for i, key in enumerate(old_keys):
        if key in merged:
            old_model[key], idx = merged[key]
            pieces = [opt["state"][j] for j in idx]
            old_state[i] = {n: (torch.cat([p[n] for p in pieces], -1) if pieces[0][n].dim() > 0 else pieces[0][n])
                            for n in pieces[0]}
        else:
            old_model[key] = model[key]
            old_state[i] = opt["state"][keys.index(key)]
    groups = [dict(g, params=list(range(len(old_keys)))) for g in opt["param_groups"]]
    return dict(state, model=old_model, optimizer={"state": old_state, "param_groups": groups})


def test_resume_from_a_version_0_1_0_checkpoint(blobs, tmp_path):
    images, labels, _ = blobs
    c = cfg(epochs=2, checkpoint_every=1)
    full = train(c, [0, 1], images, labels, progress=False)
    train_interrupted(c, [0, 1], images, labels, tmp_path / "last.pt", after_epoch=1)
    path = tmp_path / "last.pt"
    state = load_checkpoint(path)
    old = _as_version_0_1_0(state)
    assert "rng" not in state
    old["rng"] = {"scheme": "derived-per-epoch", "next_epoch": 1}  # 0.1/0.2 checkpoints held this unused entry
    assert "decoder.2.weight" in old["model"] and old["model"]["decoder.2.weight"].shape == (2, 32, 4100)
    torch.save(old, path)
    upgraded = load_checkpoint(path)
    for (k, v), (k2, v2) in zip(state["model"].items(), upgraded["model"].items()):
        assert k == k2 and torch.equal(v, v2)
    resumed = train(c, [0, 1], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert resumed.resumed_from == 1
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
