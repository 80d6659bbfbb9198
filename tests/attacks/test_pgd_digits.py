"""On a small MLP trained on digits, PGD at a moderate ε lowers accuracy a lot."""

import math

import pytest
import torch
from torch import nn

from trustops.attacks import attack_metrics, fgsm_attack, pgd_attack, plot_attack_examples


@pytest.mark.parametrize(
    ("norm", "epsilon", "step_size"),
    [("inf", 2.0, 0.5), ("l2", 12.0, 3.0)],  # L∞: 2 of 16 grey levels; L2: ~1.5 levels per pixel on average
)
def test_pgd_lowers_digits_accuracy_a_lot(digits_model, single_thread, norm, epsilon, step_size):
    model, x, y = digits_model
    x_adv = pgd_attack(
        model, x, y, norm=norm, epsilon=epsilon, step_size=step_size, steps=10, clamp=(0.0, 16.0),
        random_start=True, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    metrics = attack_metrics(model, x, x_adv, y)
    assert metrics.clean_accuracy > 0.9
    assert metrics.adversarial_accuracy < 0.3
    assert metrics.attack_success_rate > 0.7


def test_pgd_is_at_least_as_strong_as_fgsm(digits_model, single_thread):
    model, x, y = digits_model
    fgsm = attack_metrics(model, x, fgsm_attack(model, x, y, epsilon=1.0, clamp=(0.0, 16.0)), y)
    pgd = attack_metrics(model, x, pgd_attack(model, x, y, epsilon=1.0, step_size=0.25, steps=10, clamp=(0.0, 16.0)), y)
    assert fgsm.adversarial_accuracy < fgsm.clean_accuracy
    assert pgd.adversarial_accuracy <= fgsm.adversarial_accuracy


def test_attack_metrics_by_hand():
    identity = nn.Identity()  # the "logits" are the inputs themselves
    y = torch.tensor([0, 0, 1, 1])
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # predictions 0 0 0 1: 3 correct
    x_adv = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # predictions 1 0 1 0
    metrics = attack_metrics(identity, x, x_adv, y)
    assert metrics.clean_accuracy == 0.75 and metrics.adversarial_accuracy == 0.5
    assert metrics.attack_success_rate == pytest.approx(2 / 3)  # samples 0 and 3 flipped, of 0, 1, 3
    assert (metrics.n, metrics.n_clean_correct) == (4, 3)
    nothing_correct = attack_metrics(identity, x_adv[:1], x_adv[:1], torch.tensor([0]))
    assert math.isnan(nothing_correct.attack_success_rate)


def test_example_images_render_to_png(digits_model, single_thread, tmp_path):
    import matplotlib.image  # here, not at module level: only this test reads images back

    model, x, y = digits_model
    x_adv = fgsm_attack(model, x[:3], y[:3], epsilon=2.0, clamp=(0.0, 16.0))
    with torch.no_grad():
        path = plot_attack_examples(
            x[:3], x_adv, tmp_path / "examples.png", n=3, image_shape=(8, 8), labels=y[:3],
            clean_pred=model(x[:3]).argmax(1), adv_pred=model(x_adv).argmax(1),
        )  # fmt: skip
    one = plot_attack_examples(x[:1], x_adv[:1], tmp_path / "one.png", n=1)  # square flat samples need no shape
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (height3, width3, _), (height1, width1, _) = matplotlib.image.imread(path).shape, matplotlib.image.imread(one).shape
    assert width3 == width1 and height3 > 2 * height1  # one row per example: clean, adversarial, difference
