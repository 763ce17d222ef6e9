"""Classifier two-sample test: can a small network tell generated from truth events?

A ROC AUC of 0.5 means indistinguishable; 1.0 means every event is told apart. The classifier
trains on one half of each sample and is scored on the other half.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed, torch_generator


def classifier_inputs(process: Process, events: np.ndarray) -> np.ndarray:
    """What the two-sample classifier sees: the network features (flat processes only; for
    point clouds and images the observables summarise them), the conditions and every
    observable, undefined entries and absent slots as 0."""
    with np.errstate(all="ignore"):
        observables = process.observables(events)
        conditions = process.conditions(events)
        columns = [conditions, *observables.values()]
        if process.feature_shape is None:
            features = process.to_features(events)
            mask = process.feature_mask(conditions)
            columns.insert(0, features if mask is None else np.where(mask, features, 0.0))
        columns = np.column_stack(columns)
    return np.where(np.isnan(columns), 0.0, columns)


def roc_auc(scores_positive: np.ndarray, scores_negative: np.ndarray, weights_positive: np.ndarray | None = None,
            weights_negative: np.ndarray | None = None) -> float:
    """Mann–Whitney AUC = P(s₊ > s₋) + ½ P(s₊ = s₋), with events weighted when weights are given:
    Σ_ij w₊ᵢ w₋ⱼ ([s₊ᵢ > s₋ⱼ] + ½[s₊ᵢ = s₋ⱼ]) / (Σw₊ Σw₋)."""
    w_pos = np.ones(len(scores_positive)) if weights_positive is None else np.asarray(weights_positive, dtype=float)
    w_neg = np.ones(len(scores_negative)) if weights_negative is None else np.asarray(weights_negative, dtype=float)
    order = np.argsort(scores_negative, kind="mergesort")
    sorted_negative = np.asarray(scores_negative)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(w_neg[order])])
    below = cumulative[np.searchsorted(sorted_negative, scores_positive, side="left")]
    below_or_equal = cumulative[np.searchsorted(sorted_negative, scores_positive, side="right")]
    return float(np.sum(w_pos * 0.5 * (below + below_or_equal)) / (w_pos.sum() * w_neg.sum()))


def effective_size(weights: np.ndarray | None, n: int) -> float:
    """Kish's effective number of events ``(Σw)² / Σw²``; ``n`` without weights."""
    if weights is None:
        return float(n)
    return float(weights.sum() ** 2 / np.square(weights).sum())


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC estimate."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return math.sqrt(max(variance, 0.0))


def null_auc_std(n_pos: int, n_neg: int) -> float:
    """Spread of the AUC when both classes come from one distribution (the truth-vs-truth floor,
    whose mean is 0.5): the Mann–Whitney null variance ``(n₊ + n₋ + 1) / (12 n₊ n₋)``."""
    return math.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg))


def gaussianize(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Map each column through the reference's empirical CDF to a standard normal, so that long
    tails and outliers do not dominate the classifier: ``Φ⁻¹(F_ref(x))``, F clipped to (0, 1)."""
    n = len(reference)
    columns = []
    for ref, column in zip(np.sort(reference, axis=0).T, values.T):
        cdf = (np.searchsorted(ref, column, side="left") + np.searchsorted(ref, column, side="right")) / (2 * n)
        columns.append(np.clip(cdf, 0.5 / n, 1 - 0.5 / n))
    return torch.special.ndtri(torch.from_numpy(np.stack(columns, axis=1))).numpy().astype(np.float32)


def make_classifier(n_inputs: int, hidden: int = 128) -> nn.Module:
    """The classifier network: ``(n, n_inputs) → (n, 1)`` logits, two hidden SiLU layers."""
    return nn.Sequential(nn.Linear(n_inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, 1))


def train_classifier(x: np.ndarray, labels: np.ndarray, seed: int, weights: np.ndarray | None = None,
                     epochs: int = 20, hidden: int = 128, batch_size: int = 512) -> nn.Module:
    """Fit :func:`make_classifier` to ``labels (n,)`` (0/1) of inputs ``x (n, d)`` float32 by the
    (``weights``-weighted) binary cross-entropy, Adam, ``epochs`` passes in seeded batches."""
    torch.manual_seed(derive_seed(seed, "classifier-init"))
    model = make_classifier(x.shape[1], hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    features, targets = torch.from_numpy(x), torch.from_numpy(labels.astype(np.float32))
    event_weights = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32))
    generator = torch_generator(derive_seed(seed, "classifier-batches"))
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(features[batch])[:, 0], targets[batch],
                weight=None if event_weights is None else event_weights[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def classifier_two_sample_test(truth: np.ndarray, generated: np.ndarray, seed: int = 0, epochs: int = 20,
                               hidden: int = 128, batch_size: int = 512,
                               generated_weights: np.ndarray | None = None) -> dict[str, float]:
    """Train an MLP on half of ``truth`` vs ``generated`` (``(n, d)`` feature arrays, non-finite
    rows dropped, classes balanced); return ``{"auc", "auc_std", "n_test"}`` on the other half,
    beside the truth-vs-truth floor ``auc_floor`` = 0.5 ± ``auc_floor_std`` (:func:`null_auc_std`)
    and ``auc_pull`` = (auc − 0.5) / auc_floor_std. With ``generated_weights (n_generated,)`` the
    generated events count with their weights in the training loss and the AUC, and the spreads
    use their effective number (:func:`effective_size`)."""
    finite_truth, finite_generated = np.isfinite(truth).all(axis=1), np.isfinite(generated).all(axis=1)
    truth, generated = truth[finite_truth], generated[finite_generated]
    if generated_weights is not None:
        generated_weights = np.asarray(generated_weights, dtype=float)[finite_generated]
    n = min(len(truth), len(generated))
    if n < 20:
        raise ValueError(f"the classifier test needs at least 20 finite events per sample, got {n}")
    rng = np.random.default_rng(derive_seed(seed, "classifier-split"))
    chosen = rng.permutation(len(generated))[:n]
    truth, generated = truth[rng.permutation(len(truth))[:n]], generated[chosen]
    x = gaussianize(truth, np.concatenate([truth, generated]))
    labels = np.concatenate([np.zeros(n), np.ones(n)])
    half = n // 2
    train_index = np.concatenate([np.arange(half), n + np.arange(half)])
    test_index = np.concatenate([np.arange(half, n), n + np.arange(half, n)])
    weights = None
    if generated_weights is not None:
        generated_weights = generated_weights[chosen]
        weights = np.concatenate([np.ones(n), generated_weights / generated_weights[:half].mean()])
    model = train_classifier(x[train_index], labels[train_index], seed,
                             None if weights is None else weights[train_index], epochs, hidden, batch_size)
    with torch.no_grad():
        scores = model(torch.from_numpy(x[test_index]))[:, 0].numpy()
    n_test = n - half
    test_weights = None if weights is None else weights[n + half:]
    auc = roc_auc(scores[n_test:], scores[:n_test], test_weights)
    n_generated = effective_size(test_weights, n_test)
    floor_std = null_auc_std(n_test, n_generated)
    result = {"auc": auc, "auc_std": auc_standard_error(auc, n_generated, n_test), "n_test": 2 * n_test,
              "auc_floor": 0.5, "auc_floor_std": floor_std, "auc_pull": (auc - 0.5) / floor_std}
    if test_weights is not None:
        result["n_generated_effective"] = n_generated
    return result
