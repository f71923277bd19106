"""The per-seed γ controller (welavae.train.gamma).

Known answers: a quadratic problem whose label term at the optimum has a
closed form, so the multiplier's fixed point is known; a constant fit whose
ratio to the target is exactly 2 (or 1/2, or 0) makes every step exactly
η·log 2 (or −η·log 2, or the clip −η·log 10); the rest are equivalences bit
for bit (a seed without labels, a seed alone or beside others, a resumed
controller).
"""
import math

import pytest
import torch

from welavae.train.gamma import (
    DEFAULT_TARGET,
    ETA,
    GammaController,
    GammaTarget,
    balanced_gamma,
    label_errors,
    take_seeds,
)

STATE = ("log_gamma", "average", "seen")


def same_state(c1: GammaController, c2: GammaController) -> bool:
    return all(torch.equal(getattr(c1, n), getattr(c2, n)) for n in STATE)


# ----------------------------------------------------------------------------- closed form
def quadratic_run(*, eta, alpha, steps, kappa=0.02):
    """θ minimising ½(θ − a)² + γ·½(θ − b)² is θ* = (a + γb)/(1 + γ), where the label term is
    g*(γ) = (a − b)²/(2(1 + γ)²); the controller sees ℓ = g*(γ) of its current γ each step (count 1)."""
    a = torch.zeros(3, dtype=torch.float64)
    b = torch.tensor([2.0, 20.0, 0.1], dtype=torch.float64)
    c = GammaController(3, target=GammaTarget("nll", kappa), gamma0=1.0, gamma_max=1e4, eta=eta, alpha=alpha)
    trajectory = []
    for _ in range(steps):
        gamma = c.gamma.double()  # the float32 weight a loss would use
        theta = (a + gamma * b) / (1 + gamma)
        c.update(count=1, nll_sum=0.5 * (theta - b) ** 2)
        trajectory.append(c.log_gamma.exp())
    return c, torch.stack(trajectory)


# γ* = |a − b|/√(2κ) − 1 with κ = 0.02 (√(2κ) = 0.2): 2/0.2 − 1 = 9, 20/0.2 − 1 = 99, and
# 0.1/0.2 − 1 < 1 (slack: even γ = 1 fits better than κ, so γ stays at γ_min = 1).
GAMMA_STAR = torch.tensor([9.0, 99.0, 1.0], dtype=torch.float64)


@pytest.mark.parametrize("alpha,steps", [(0.9, 1000), (0.99, 6000)])
def test_the_multiplier_converges_to_the_closed_form(alpha, steps):
    """Why it converges: ℓ falls as γ rises (d log g*/d log γ = −2γ/(1+γ), elasticity k in [1, 2)),
    so the only fixed point is ℓ̄ = κ, i.e. γ = γ*.  Far from it, log γ moves η·log 10 per step
    towards it (the clipped ratio); near it, (log γ, log ℓ̄) evolve by [[1, η], [−(1−α)k, α]],
    whose eigenvalues have sum 1 + α and product α + η(1−α)k < 1: real in (0, 1) for α = 0.9
    (1 − α ≥ 4ηk: no oscillation), complex of modulus ≈ 0.995 for α = 0.99 (a damped oscillation).
    The slack seed's ratio is below 1 at γ = 1, so every step is clipped at log γ_min = 0."""
    c, _ = quadratic_run(eta=0.01, alpha=alpha, steps=steps)
    final = c.log_gamma.exp()
    assert (final - GAMMA_STAR).abs().max().item() < 1e-3, final.tolist()
    assert c.log_gamma[2].item() == 0.0 and c.gamma[2].item() == 1.0


def test_a_short_memory_does_not_overshoot_where_gecos_long_one_does():
    """The moving average starts at the first fit, g*(1) = (a − b)²/8 ≫ κ; with α = 0.99 it remembers it
    for ~100·log(ℓ₀/κ) steps, during which γ keeps rising at the clip: seed 0 goes past 3·γ* and
    seed 1 to γ_max = 1e4.  With α = 0.9 (1 − α ≥ 4ηk, critically damped) γ approaches from below."""
    _, long_memory = quadratic_run(eta=0.01, alpha=0.99, steps=1500)
    _, short_memory = quadratic_run(eta=0.01, alpha=0.9, steps=1500)
    assert long_memory[:, 0].max().item() > 3 * 9.0
    assert long_memory[:, 1].max().item() == pytest.approx(1e4)
    assert (short_memory.max(0).values <= GAMMA_STAR * (1 + 1e-6)).all()


# ----------------------------------------------------------------------------- the rule, step by step
def test_a_constant_ratio_of_two_moves_log_gamma_by_eta_log_2_per_step_until_the_clip():
    """ℓ ≡ 2κ (float64 sums over 4 and 8 entries: scaling by powers of 2 is exact): the average is 2κ from
    the first batch on (ℓ̄ + (1−α)(ℓ − ℓ̄) adds exactly 0), the ratio is exactly 2, so
    log γ_n = log γ_0 + n·η·log 2; γ_0 = 1, γ_max = 4 = 2², η = 0.01: the clip from n = 200."""
    kappa, eta = 0.05, 0.01
    c = GammaController(2, target=GammaTarget("nll", kappa), gamma0=1.0, gamma_max=4.0, eta=eta)
    for n in range(1, 260):
        c.update(count=torch.tensor([4, 8]), nll_sum=torch.tensor([4 * 2 * kappa, 8 * 2 * kappa], dtype=torch.float64))
        expected = min(n * eta * math.log(2.0), math.log(4.0))
        assert c.log_gamma.tolist() == pytest.approx([expected] * 2, abs=1e-12), n
        if n > 200:
            assert c.log_gamma.tolist() == [math.log(4.0)] * 2 and c.gamma.tolist() == [4.0, 4.0]
    assert c.average.tolist() == [2 * kappa] * 2


def test_a_ratio_of_one_half_moves_down_until_gamma_min_and_the_ratio_is_clipped_at_ten():
    """ℓ ≡ κ/2 from γ_0 = 8 = 2³ (η = 0.01): log γ_n = log 8 − n·η·log 2, γ = 1 from n = 300.
    ℓ ≡ 1000κ: the ratio is clipped at 10, log γ_n = n·η·log 10."""
    kappa, eta = 0.05, 0.01
    down = GammaController(1, target=GammaTarget("nll", kappa), gamma0=8.0, gamma_max=100.0, eta=eta)
    up = GammaController(1, target=GammaTarget("nll", kappa), gamma0=1.0, gamma_max=100.0, eta=eta)
    for n in range(1, 320):
        down.update(count=1, nll_sum=torch.tensor([kappa / 2], dtype=torch.float64))
        up.update(count=1, nll_sum=torch.tensor([1000 * kappa], dtype=torch.float64))
        assert down.log_gamma.item() == pytest.approx(max(math.log(8.0) - n * eta * math.log(2.0), 0.0), abs=1e-12)
        if n <= 200:  # log 100 = 2 log 10: the upper bound from n = 200
            assert up.log_gamma.item() == pytest.approx(n * eta * math.log(10.0), abs=1e-12)
    assert down.log_gamma.item() == 0.0 and down.gamma.item() == 1.0
    assert up.log_gamma.item() == math.log(100.0)


def test_the_accuracy_target_moves_as_the_nll_target_with_the_same_ratio():
    """acc:0.75 → ε = 0.25 exactly; 4 errors in 8 entries → e = 0.5 = 2ε, the same numbers as
    nll:0.25 with an NLL of 4 over 8 entries: the two trajectories are equal bit for bit, and
    log γ_n = n·η·log 2.  No error at all (e = 0, log 0 = −inf) is clipped: −η·log 10 per step."""
    acc = GammaController(1, target=GammaTarget.parse("acc:0.75"), gamma0=1.0, gamma_max=1e3)
    nll = GammaController(1, target=GammaTarget.parse("nll:0.25"), gamma0=1.0, gamma_max=1e3)
    perfect = GammaController(1, target=GammaTarget.parse("acc:0.99"), gamma0=1e3, gamma_max=1e3)
    for n in range(1, 101):
        acc.update(count=8, errors=torch.tensor([4]))
        nll.update(count=8, nll_sum=torch.tensor([4.0]))
        perfect.update(count=512, errors=torch.tensor([0]))
        assert same_state(acc, nll)
        assert acc.log_gamma.item() == pytest.approx(n * ETA * math.log(2.0), abs=1e-12)
        assert perfect.log_gamma.item() == pytest.approx(math.log(1e3) - n * ETA * math.log(10.0), abs=1e-12)
    # acc:0.99 (ε = 1 − 0.99, not exactly 0.01 in binary): 2 errors in 100 entries, a ratio of 2 to 1e-15.
    c = GammaController(1, target=GammaTarget.parse("acc:0.99"), gamma0=1.0, gamma_max=1e3)
    for _ in range(50):
        c.update(count=100, errors=torch.tensor([2]))
    assert c.log_gamma.item() == pytest.approx(50 * ETA * math.log(2.0), rel=1e-12)


def test_update_needs_what_the_target_reads_and_passes_no_gradient():
    c = GammaController(2, target=GammaTarget.parse("acc:0.9"), gamma0=2.0, gamma_max=10.0)
    with pytest.raises(ValueError, match="needs errors"):
        c.update(count=4, nll_sum=torch.ones(2))
    nll = torch.ones(2, requires_grad=True)
    d = GammaController(2, target=GammaTarget.parse("nll:0.1"), gamma0=2.0, gamma_max=10.0)
    d.update(count=4, nll_sum=nll * 4)
    assert not d.log_gamma.requires_grad and not d.gamma.requires_grad and d.gamma.dtype == torch.float32


# ----------------------------------------------------------------------------- seeds are independent
def random_batches(steps, seeds, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    count = torch.randint(0, 3, (steps, seeds), generator=g) * 4  # some batches without labels
    nll = torch.rand(steps, seeds, generator=g, dtype=torch.float64) * count
    errors = torch.binomial(count.double(), torch.full((steps, seeds), 0.05, dtype=torch.float64), generator=g)
    return count, nll, errors


def test_a_seed_without_labelled_entries_keeps_its_state_bit_for_bit():
    """count = 0 for seed 1, before and after its first labels; a NaN fit (a diverged seed) likewise."""
    c = GammaController(3, target=GammaTarget.parse("nll:0.1"), gamma0=[1.0, 2.0, 3.0], gamma_max=100.0)
    before = c.state_dict()
    c.update(count=torch.tensor([4, 0, 4]), nll_sum=torch.tensor([4.0, 4.0, 0.1]))
    after = c.state_dict()
    assert after["seen"].tolist() == [True, False, True]
    assert torch.equal(after["log_gamma"][1], before["log_gamma"][1])
    assert torch.equal(after["average"][1], before["average"][1])
    assert after["log_gamma"][0] > before["log_gamma"][0] and after["log_gamma"][2] < before["log_gamma"][2]
    for _ in range(5):
        c.update(count=4, nll_sum=torch.tensor([0.2, 4.0, 0.2]))
    held = c.state_dict()
    c.update(count=torch.tensor([4, 0, 4]), nll_sum=torch.tensor([4.0, 0.0, 4.0]))
    c.update(count=4, nll_sum=torch.tensor([4.0, float("nan"), 4.0]))
    for name in STATE:
        assert torch.equal(c.state_dict()[name][1], held[name][1]), name
    assert not torch.equal(c.log_gamma[0], held["log_gamma"][0])


@pytest.mark.parametrize("kind", ["nll", "acc"])
def test_a_seed_alone_follows_the_trajectory_it_has_beside_others(kind):
    """Seed at position 1 of S = 3, and the same inputs given to an S = 1 controller: equal bit for bit."""
    target = GammaTarget(kind, 0.1 if kind == "nll" else 0.95)
    count, nll, errors = random_batches(300, 3)
    many = GammaController(3, target=target, gamma0=[1.0, 5.0, 50.0], gamma_max=4096.0)
    one = GammaController(1, target=target, gamma0=5.0, gamma_max=4096.0)
    for t in range(300):
        many.update(count=count[t], nll_sum=nll[t], errors=errors[t])
        one.update(count=count[t, 1:2], nll_sum=nll[t, 1:2], errors=errors[t, 1:2])
        assert all(torch.equal(getattr(many, n)[1:2], getattr(one, n)) for n in STATE), t
    assert one.log_gamma.item() != math.log(5.0)


# ----------------------------------------------------------------------------- checkpoints and --init-from
def test_a_state_saved_and_loaded_continues_as_if_never_stopped(tmp_path):
    count, nll, errors = random_batches(200, 4, seed=1)
    target = GammaTarget.parse("acc:0.9")
    straight = GammaController(4, target=target, gamma0=10.0, gamma_max=4096.0)
    first = GammaController(4, target=target, gamma0=10.0, gamma_max=4096.0)
    for t in range(200):
        straight.update(count=count[t], errors=errors[t])
    for t in range(120):
        first.update(count=count[t], errors=errors[t])
    torch.save({"gamma": first.state_dict()}, tmp_path / "ckpt.pt")
    resumed = GammaController(4, target=target, gamma0=1.0, gamma_max=4096.0)
    resumed.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["gamma"])
    assert same_state(resumed, first)
    for t in range(120, 200):
        resumed.update(count=count[t], errors=errors[t])
    assert same_state(resumed, straight)


def test_seeds_take_their_state_from_another_controllers_seeds():
    """--init-from: positions [2, 0] of the new run take positions [0, 3] of the source; position 1 keeps its own."""
    source = GammaController(4, target=DEFAULT_TARGET, gamma0=[2.0, 3.0, 4.0, 5.0], gamma_max=100.0)
    source.update(count=10, errors=torch.tensor([5, 0, 0, 1]))
    new = GammaController(3, target=DEFAULT_TARGET, gamma0=7.0, gamma_max=100.0)
    new.load_state_dict(take_seeds(source.state_dict(), [0, 3]), seeds=[2, 0])
    assert new.seen.tolist() == [True, False, True]
    assert new.log_gamma[[2, 0]].tolist() == source.log_gamma[[0, 3]].tolist()
    assert new.average.tolist() == [0.1, 0.0, 0.5]
    assert new.log_gamma[1].item() == math.log(7.0)
    subset = source.state_dict(seeds=[0, 3])
    assert all(torch.equal(subset[n], take_seeds(source.state_dict(), [0, 3])[n]) for n in STATE)
    with pytest.raises(ValueError, match=r"'log_gamma' has shape \(2,\), expected \(3,\)"):
        new.load_state_dict(take_seeds(source.state_dict(), [0, 3]))
    with pytest.raises(ValueError, match="has the entries"):
        new.load_state_dict({"log_gamma": torch.zeros(3)})


# ----------------------------------------------------------------------------- targets and settings
@pytest.mark.parametrize("text,kind,value,back", [
    ("acc:0.99", "acc", 0.99, "acc:0.99"),
    ("nll:0.05", "nll", 0.05, "nll:0.05"),
    (" nll:5e-2 ", "nll", 0.05, "nll:0.05"),
    ("nll:3", "nll", 3.0, "nll:3"),
])
def test_gamma_targets_parse_and_print_back(text, kind, value, back):
    target = GammaTarget.parse(text)
    assert (target.kind, target.value, str(target)) == (kind, value, back)
    assert GammaTarget.parse(str(target)) == target


FORMS = ("acc:A (a training label accuracy, 0 < A < 1, e.g. acc:0.99), "
         "nll:K (a mean NLL per observed label entry, K > 0, e.g. nll:0.05) "
         "or grad:F (the labels' gradient at z, F > 0 times the image's, e.g. grad:1)")


@pytest.mark.parametrize("text,sentence", [
    ("0.99", f"--gamma-target: expected {FORMS}, got '0.99'"),
    ("acc=0.99", f"--gamma-target: expected {FORMS}, got 'acc=0.99'"),
    ("acc:high", f"--gamma-target: expected {FORMS}, got 'acc:high'"),
    ("acc:", f"--gamma-target: expected {FORMS}, got 'acc:'"),
    ("mse:0.1", f"--gamma-target: unknown kind 'mse' in 'mse:0.1'; expected {FORMS}"),
    ("acc:1", "--gamma-target: the accuracy in 'acc:1' must lie strictly between 0 and 1 "
              "(an accuracy of 1 leaves no error rate to aim at)"),
    ("acc:0", "--gamma-target: the accuracy in 'acc:0' must lie strictly between 0 and 1 "
              "(an accuracy of 1 leaves no error rate to aim at)"),
    ("acc:nan", "--gamma-target: the accuracy in 'acc:nan' must lie strictly between 0 and 1 "
                "(an accuracy of 1 leaves no error rate to aim at)"),
    ("nll:0", "--gamma-target: the NLL in 'nll:0' must be a finite number greater than 0"),
    ("nll:-0.5", "--gamma-target: the NLL in 'nll:-0.5' must be a finite number greater than 0"),
    ("nll:inf", "--gamma-target: the NLL in 'nll:inf' must be a finite number greater than 0"),
    ("grad:0", "--gamma-target: the gradient fraction in 'grad:0' must be a finite number greater than 0"),
])
def test_a_bad_gamma_target_is_refused_in_one_sentence(text, sentence):
    with pytest.raises(ValueError) as info:
        GammaTarget.parse(text)
    assert str(info.value) == sentence


def test_the_defaults_and_bad_settings():
    assert str(DEFAULT_TARGET) == "grad:1"
    c = GammaController(2, gamma0=1.0, gamma_max=4096.0)
    assert c.gamma.tolist() == [1.0, 1.0] and c.log_gamma.dtype == torch.float64
    with pytest.raises(ValueError, match=r"gamma0 must lie in \[gamma_min, gamma_max\] = \[1, 4096\], got 5000"):
        GammaController(2, gamma0=[2.0, 5000.0], gamma_max=4096.0)
    with pytest.raises(ValueError, match=r"one per seed \(2,\), got shape \(3,\)"):
        GammaController(2, gamma0=[2.0, 3.0, 4.0], gamma_max=4096.0)
    with pytest.raises(ValueError, match="alpha must lie in"):
        GammaController(2, gamma0=1.0, gamma_max=4096.0, alpha=1.0)


# ----------------------------------------------------------------------------- helpers for the trainer
def test_label_errors_counts_wrong_argmaxes_of_observed_entries():
    """Hand count: label 0 predicts [1, 0, 1] for y = [1, 1, −1] (1 error, 2 observed); label 1 predicts
    [2, 0, 0] for y = [2, −1, 1] (1 error, 2 observed) → 2 errors of 4 for seed 0; seed 1's logits are
    negated: label 0 predicts [0, 1, 0] (1 error), label 1 predicts [0, 1, 1] (1 error on sample 0)."""
    y = torch.tensor([[1, 2], [1, -1], [-1, 1]])
    l0 = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    l1 = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    errors, count = label_errors([torch.stack([l0, -l0]), torch.stack([l1, -l1])], y)
    assert errors.tolist() == [2, 2] and count.item() == 4


def test_balanced_gamma_equalises_the_gradient_norms_at_the_latent():
    """‖image‖ = 6 (entries 3, 3, 3, 3 over (B, K) = (2, 2)), ‖label‖ = 2 (1, 1, 1, 1): γ = 3, or 1.5 for
    fraction 0.5; a label gradient 100 times the image's gives 0.06, clipped to γ_min = 1; none gives γ_max."""
    image = torch.stack([torch.full((2, 2), 3.0), torch.full((2, 2), 3.0), torch.full((2, 2), 0.01), torch.ones(2, 2)])
    label = torch.stack([torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2), torch.zeros(2, 2)])
    assert balanced_gamma(image, label, gamma_max=4096.0).tolist() == pytest.approx([3.0, 3.0, 1.0, 4096.0])
    assert balanced_gamma(image[:1], label[:1], fraction=0.5, gamma_max=4096.0).tolist() == pytest.approx([1.5])


# --------------------------------------------------------------------------- the grad:F rule


def test_balance_converges_geometrically_to_the_gradient_ratio():
    # K = 1, z = 0 for every sample: image NLL A·z has gradient A/B per sample at z (mean over B);
    # one binary label with logits (0, z) and y = 1 has NLL softplus(−z), gradient −σ(−z)/B = −1/(2B).
    # The norms over the batch are A/√B and 1/(2√B): ratio 2A, so γ* = 2AF.  The rule moves log γ by
    # (1 − α) of the way each step: log γ_n = log γ* + αⁿ (log γ_0 − log γ*), with γ* clipped to [1, γ_max].
    A = torch.tensor([3.0, 50.0, 0.2])  # γ* = 2AF with F = 0.5: 3, 50, and 0.2 → clipped to γ_min = 1
    F, B, alpha, g0 = 0.5, 8, 0.9, 10.0
    c = GammaController(3, target=GammaTarget.parse(f"grad:{F}"), gamma0=g0, gamma_max=1e4, alpha=alpha)
    y = torch.ones(B, 1, dtype=torch.int64)
    for n in range(1, 41):
        z = torch.zeros(3, B, 1, requires_grad=True)
        logits = torch.cat([torch.zeros_like(z), z], dim=-1)
        c.balance((A[:, None, None] * z).sum(-1), [logits], y, z)
        star = (2 * A * F).double().clamp(min=1.0)
        expect = star.log() + alpha ** n * (math.log(g0) - star.log())
        assert torch.allclose(c.log_gamma, expect, rtol=0, atol=1e-12)
    assert torch.allclose(c.gamma, torch.tensor([3.0, 50.0, 1.0]), rtol=0.05)


def test_balance_leaves_a_seed_without_labels_or_frozen_unchanged():
    c = GammaController(2, target=GammaTarget.parse("grad:1"), gamma0=10.0, gamma_max=1e4)
    z = torch.zeros(2, 4, 1, requires_grad=True)
    logits = torch.cat([torch.zeros_like(z), z], dim=-1)
    c.balance(z.sum(-1) * 50.0, [logits], torch.full((4, 1), -1), z)  # every label missing: no label gradient
    assert torch.equal(c.gamma, torch.tensor([10.0, 10.0]))
    c.balance(z.sum(-1) * 50.0, [logits], torch.ones(4, 1, dtype=torch.int64), z, alive=torch.tensor([True, False]))
    assert c.gamma[1].item() == 10.0 and c.gamma[0].item() != 10.0
