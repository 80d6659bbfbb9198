"""Adversarial attacks (PGD, FGSM) for testing the adversarial detector."""

from trustops.attacks.metrics import AttackMetrics, attack_metrics, plot_attack_examples
from trustops.attacks.pgd import NORMS, fgsm_attack, pgd_attack, project_perturbation

__all__ = ["NORMS", "AttackMetrics", "attack_metrics", "fgsm_attack", "pgd_attack", "plot_attack_examples", "project_perturbation"]
