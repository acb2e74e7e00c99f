import math

import torch

from rewardlab.losses import bradley_terry_loss, pair_losses


def _hand_loss(rc, rr, margin=None, coef=None):
    total = 0.0
    for i, (c, r) in enumerate(zip(rc, rr, strict=True)):
        d = c - r - (margin[i] if margin else 0.0)
        total += -math.log(1 / (1 + math.exp(-d)))
    loss = total / len(rc)
    if coef:
        loss += coef * sum((c + r) ** 2 for c, r in zip(rc, rr, strict=True)) / len(rc)
    return loss


def test_plain_loss_matches_hand_computation():
    rc, rr = [1.0, -0.5, 2.0], [0.0, 0.5, 2.5]
    got = bradley_terry_loss(torch.tensor(rc), torch.tensor(rr))
    assert math.isclose(got.item(), _hand_loss(rc, rr), rel_tol=1e-6)


def test_margin_shifts_the_decision_boundary():
    rc, rr, m = [1.0, 0.3], [0.0, 0.1], [0.5, 1.0]
    got = bradley_terry_loss(torch.tensor(rc), torch.tensor(rr), torch.tensor(m))
    assert math.isclose(got.item(), _hand_loss(rc, rr, m), rel_tol=1e-6)
    assert got > bradley_terry_loss(torch.tensor(rc), torch.tensor(rr))


def test_centering_term_matches_hand_computation():
    rc, rr = [3.0, -1.0], [1.0, 2.0]
    got = bradley_terry_loss(torch.tensor(rc), torch.tensor(rr), center_rewards_coefficient=0.01)
    # by hand: BT part = (softplus(-2) + softplus(3)) / 2; centring = 0.01 * ((4)^2 + (1)^2) / 2 = 0.085
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(3))) / 2 + 0.085
    assert math.isclose(got.item(), expected, rel_tol=1e-6)
    assert math.isclose(got.item(), _hand_loss(rc, rr, coef=0.01), rel_tol=1e-6)


def test_loss_is_finite_for_extreme_differences():
    losses = pair_losses(torch.tensor([-1e4, 1e4]), torch.tensor([1e4, -1e4]))
    assert torch.isfinite(losses).all()
    assert math.isclose(losses[0].item(), 2e4, rel_tol=1e-6)
    assert losses[1].item() == 0.0


def test_gradient_pushes_chosen_up_and_rejected_down():
    rc = torch.tensor([0.0], requires_grad=True)
    rr = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(rc, rr).backward()
    assert rc.grad.item() < 0 < rr.grad.item()
