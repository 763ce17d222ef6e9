"""Discriminator reweighting: per-event weights that pull a generator's events onto its truth
(fitted here on arrays; :mod:`bayesgen.app.reweight` fits them to a trained run).

A classifier trained to tell a run's training events (label 1) from events it generated
(label 0), on balanced samples, estimates D(x) = p_truth(x) / (p_truth(x) + p_gen(x)), so

    w(x) = D / (1 − D) = p_truth(x) / p_gen(x)

turns the generated sample into one distributed as the truth, where the generator populates the
space at all: a region with p_gen = 0 < p_truth gets no events to weight, and a weight cannot
repair it. The classifier is that of the two-sample test (:mod:`.classifier`: the same network
and inputs, the network features and every observable mapped to a standard normal through the
truth's empirical CDF).

Calibration. The network is fitted on (1 − CALIBRATION_FRACTION) of both samples; on the rest
its logits s get a logistic calibration D = σ(a s + b) (Platt scaling: two numbers fitted by
maximum likelihood, a = 1, b = 0 for a calibrated network), so an over- or under-confident
network does not make the weights too wild or too tame. The weights w = exp(a s + b) are clipped
to [1/W_MAX, W_MAX] (W_MAX = 10: a few events in a sparse corner must not carry a histogram; the
fraction clipped is reported) and scaled to mean 1 over the held-out generated events.

The weights belong to the sampling settings they were fitted with (steps, solver): applied to
events generated otherwise they are warned about.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bayesgen.core.errors import RunError
from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed
from bayesgen.engine.io import AtomicFile
from bayesgen.validation.classifier import (classifier_inputs, effective_size, gaussianize, make_classifier,
                                            roc_auc, train_classifier)

__all__ = ["W_MAX", "CALIBRATION_FRACTION", "REWEIGHTER_NAME", "Reweighter", "fit_weights", "weight_summary",
           "reweighter_path"]

W_MAX = 10.0                 #: weights are clipped to [1/W_MAX, W_MAX] before their normalisation
CALIBRATION_FRACTION = 0.2   #: share of the events held out for the calibration and the reported checks
REFERENCE_ROWS = 50_000      #: truth rows kept for the input map (its empirical CDFs)
REWEIGHTER_NAME = "reweighter.pt"
FORMAT_VERSION = 1
_ROWS_PER_PASS = 100_000


def reweighter_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / REWEIGHTER_NAME


def weight_summary(weights: np.ndarray, calibrated: np.ndarray | None = None) -> dict[str, float]:
    """How the weights ``(n,)`` are spread: mean, standard deviation, extremes, the fractions
    above 3 and below 1/3, the effective fraction of events (Σw)²/(n Σw²) and, given the
    ``calibrated`` weights before clipping, the fraction clipped."""
    summary = {"mean": float(weights.mean()), "std": float(weights.std()), "min": float(weights.min()),
               "max": float(weights.max()), "fraction_above_3": float(np.mean(weights > 3.0)),
               "fraction_below_one_third": float(np.mean(weights < 1.0 / 3.0)),
               "effective_fraction": effective_size(weights, len(weights)) / len(weights)}
    if calibrated is not None:
        summary["fraction_clipped"] = float(np.mean((calibrated > W_MAX) | (calibrated < 1.0 / W_MAX)))
    return summary


def _platt(scores: np.ndarray, labels: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """``(a, b)`` maximising the likelihood of ``labels`` under D = σ(a s + b) (Newton's method)."""
    design = np.column_stack([scores, np.ones_like(scores)])
    beta = np.array([1.0, 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -50, 50)))
        gradient = design.T @ (p - labels)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


@dataclass
class Reweighter:
    """A fitted classifier and what turns its logits into weights (see the module docstring).

    Attributes:
        reference: truth inputs ``(n_ref, n_inputs)`` whose empirical CDFs map the inputs.
        network: the classifier, ``(n, n_inputs) → (n, 1)`` logits.
        scale, offset: the calibration ``a``, ``b``.
        normalisation: the factor giving the held-out generated events mean weight 1.
        summary: what the fit measured (json-serialisable).
    """

    reference: np.ndarray
    network: nn.Module
    scale: float
    offset: float
    normalisation: float = 1.0
    summary: dict[str, Any] = field(default_factory=dict)

    def calibrated(self, inputs: np.ndarray) -> np.ndarray:
        """``exp(a s + b)`` ``(n,)`` for classifier inputs ``(n, n_inputs)``, before clipping."""
        logits = []
        with torch.no_grad():
            for start in range(0, len(inputs), _ROWS_PER_PASS):
                x = gaussianize(self.reference, inputs[start:start + _ROWS_PER_PASS])
                logits.append(self.network(torch.from_numpy(x))[:, 0].double().numpy())
        s = np.concatenate(logits) if logits else np.empty(0)
        return np.exp(np.clip(self.scale * s + self.offset, -50, 50))

    def clip(self, calibrated: np.ndarray) -> np.ndarray:
        """Calibrated weights clipped to [1/W_MAX, W_MAX] and normalised."""
        return np.clip(calibrated, 1.0 / W_MAX, W_MAX) * self.normalisation

    def weights(self, inputs: np.ndarray) -> np.ndarray:
        """The weights ``(n,)`` of classifier inputs ``(n, n_inputs)``."""
        return self.clip(self.calibrated(inputs))

    def event_weights(self, process: Process, events: np.ndarray) -> np.ndarray:
        """The weights ``(n,)`` of generated events ``(n, n_quantities)`` of ``process``."""
        return self.weights(classifier_inputs(process, events))

    def check_sampling(self, sample_steps: int | None, solver: str | None) -> None:
        """Warn when events are generated with other sampling settings than the fit's."""
        fitted = (self.summary.get("sample_steps"), self.summary.get("solver"))
        if fitted != (sample_steps, solver):
            warnings.warn(f"the classifier weights were fitted to events generated with sample_steps = {fitted[0]}, "
                          f"solver = {fitted[1]}; these use {sample_steps}, {solver}", UserWarning, stacklevel=2)

    def describe(self) -> str:
        """The fit's held-out checks in a few lines."""
        s, w = self.summary, self.summary["held_out_weights"]
        return (f"classifier weights fitted on {s['n_fit']:,} training and {s['n_fit']:,} generated events; on "
                f"{s['n_held_out']:,} + {s['n_held_out']:,} held out:\n"
                f"  AUC training vs generated {s['held_out_auc']:.4f} (indistinguishable: 0.5 ± "
                f"{s['held_out_auc_floor_std']:.4f})\n"
                f"  calibration D = sigmoid(a s + b): a = {s['calibration']['scale']:.3f}, "
                f"b = {s['calibration']['offset']:+.3f} (calibrated network: 1, 0)\n"
                f"  weights: std {w['std']:.3f}, range {w['min']:.3f} to {w['max']:.3f}, above 3: "
                f"{w['fraction_above_3']:.3%}, clipped at 1/{W_MAX:g} and {W_MAX:g}: {w['fraction_clipped']:.3%}, "
                f"effective events {w['effective_fraction']:.1%}")

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` atomically; :meth:`load` reads it with ``weights_only=True``."""
        state = {"format": FORMAT_VERSION, "reference": torch.from_numpy(np.ascontiguousarray(self.reference)),
                 "network": self.network.state_dict(), "scale": self.scale, "offset": self.offset,
                 "normalisation": self.normalisation, "summary": self.summary}
        with AtomicFile(path) as temporary:
            torch.save(state, temporary)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "Reweighter":
        path = Path(path)
        if not path.is_file():
            raise RunError(f"no classifier weights at {path}; fit them first with `bayesgen reweight RUN`")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
            raise RunError(f"{path} holds no bayesgen classifier weights of format {FORMAT_VERSION}")
        reference = state["reference"].numpy()
        network = make_classifier(reference.shape[1], state["network"]["0.weight"].shape[0])
        network.load_state_dict(state["network"])
        return cls(reference, network.eval(), state["scale"], state["offset"], state["normalisation"],
                   state["summary"])


def fit_weights(truth: np.ndarray, generated: np.ndarray, seed: int, epochs: int = 20,
                truth_weights: np.ndarray | None = None) -> Reweighter:
    """Fit a :class:`Reweighter` to classifier inputs of truth ``(n_t, d)`` and generated
    ``(n_g, d)`` events (non-finite rows dropped, both cut to the smaller size). Its ``summary``
    holds, on the held-out events, the classifier's AUC (generated vs truth, before weighting;
    0.5 ± ``auc_floor_std`` for a perfect generator), the calibration and the weights' spread."""
    keep_truth = np.isfinite(truth).all(axis=1)
    truth, generated = truth[keep_truth], generated[np.isfinite(generated).all(axis=1)]
    if truth_weights is not None:
        truth_weights = np.asarray(truth_weights, dtype=float)[keep_truth]
    n = min(len(truth), len(generated))
    n_fit = int(round(n * (1 - CALIBRATION_FRACTION)))
    if n_fit < 100 or n - n_fit < 100:
        raise ValueError(f"fitting classifier weights needs at least 500 finite events per sample, got {n}")
    rng = np.random.default_rng(derive_seed(seed, "reweight-split"))
    chosen = rng.permutation(len(truth))[:n]
    truth, generated = truth[chosen], generated[rng.permutation(len(generated))[:n]]
    sample_weights = None
    if truth_weights is not None:
        truth_weights = truth_weights[chosen] / truth_weights[chosen][:n_fit].mean()
        sample_weights = np.concatenate([truth_weights[:n_fit], np.ones(n_fit)])
    reference = truth[:min(n_fit, REFERENCE_ROWS)]
    x = gaussianize(reference, np.concatenate([truth[:n_fit], generated[:n_fit]]))
    labels = np.concatenate([np.ones(n_fit), np.zeros(n_fit)])
    network = train_classifier(x, labels, derive_seed(seed, "reweight"), sample_weights, epochs)
    reweighter = Reweighter(reference, network, 1.0, 0.0)
    held_truth, held_generated = truth[n_fit:], generated[n_fit:]
    log_truth = np.log(reweighter.calibrated(held_truth))
    log_generated = np.log(reweighter.calibrated(held_generated))
    reweighter.scale, reweighter.offset = _platt(np.concatenate([log_truth, log_generated]),
                                                 np.concatenate([np.ones(n - n_fit), np.zeros(n - n_fit)]))
    calibrated = reweighter.calibrated(held_generated)
    reweighter.normalisation = 1.0 / float(np.clip(calibrated, 1.0 / W_MAX, W_MAX).mean())
    held_out = n - n_fit
    reweighter.summary = {
        "n_fit": n_fit, "n_held_out": held_out, "epochs": epochs, "w_max": W_MAX,
        "calibration": {"scale": reweighter.scale, "offset": reweighter.offset},
        "held_out_auc": roc_auc(log_truth, log_generated),
        "held_out_auc_floor_std": float(np.sqrt((2 * held_out + 1) / (12 * held_out**2))),
        "held_out_weights": weight_summary(reweighter.clip(calibrated), calibrated)}
    return reweighter
