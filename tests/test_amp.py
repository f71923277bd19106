"""welavae.amp: a training step under bf16 autocast, through the custom autograd functions, keeps float32 gradients."""
import pytest
import torch

from welavae.config import DataConfig, make_run_config
from welavae.nn import EnsembleVAE
from welavae.objectives import bernoulli_nll


@pytest.mark.parametrize("fused", [True, False])
def test_a_training_step_under_bf16_autocast_keeps_float32_gradients(fused):
    # Issue 24 item 3: the hand-written backwards mixed bf16 and fp32 under autocast and raised.
    # Under autocast the custom functions run in float32, so every gradient is float32 and the loss
    # stays within bf16's rounding (≈ 2⁻⁸ relative per op) of the float32 loss.
    from welavae.objectives import objective_terms

    c = make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1))
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(16, 4096, generator=g) > 0.9).float()
    y = torch.randint(0, 2, (16, 2), generator=g)
    noise = torch.randn(2, 16, 2, generator=g)

    def loss(model):
        mu, logvar = model.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * noise
        if fused:
            image_nll, label_logits = model.decode_nll(z, x)
        else:
            logits, label_logits = model.decode(z)
            image_nll = bernoulli_nll(logits, x)
        terms = objective_terms(c.objective, image_nll=image_nll, mu=mu, logvar=logvar, z=z, dataset_size=4096,
                                y=y, label_logits=label_logits)
        return terms["loss"]

    reference = loss(EnsembleVAE(c.model, [0, 1])).detach()
    model = EnsembleVAE(c.model, [0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(model)
    value.sum().backward()  # outside the autocast block, as torch's AMP recipe has it
    assert torch.isfinite(value).all() and torch.allclose(value.float(), reference, rtol=0.05)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
