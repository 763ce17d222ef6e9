"""Classifier two-sample test: can a small network tell generated from truth events?

A ROC AUC of 0.5 means indistinguishable; 1.0 means every event is told apart. The classifier
trains on one half of each sample and is scored on the other half.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bayesgen.core.seeding import derive_seed, torch_generator


def roc_auc(scores_positive: np.ndarray, scores_negative: np.ndarray) -> float:
    """Mann–Whitney AUC = P(s₊ > s₋) + ½ P(s₊ = s₋), from mid-ranks of the pooled scores."""
    pooled = np.concatenate([scores_positive, scores_negative])
    order = np.argsort(pooled, kind="mergesort")
    ranks = np.empty(len(pooled))
    sorted_scores = pooled[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mid_ranks = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid_ranks, counts)
    n_pos, n_neg = len(scores_positive), len(scores_negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


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


def classifier_two_sample_test(truth: np.ndarray, generated: np.ndarray, seed: int = 0, epochs: int = 20,
                               hidden: int = 128, batch_size: int = 512) -> dict[str, float]:
    """Train an MLP on half of ``truth`` vs ``generated`` (``(n, d)`` feature arrays, non-finite
    rows dropped, classes balanced); return ``{"auc", "auc_std", "n_test"}`` on the other half,
    beside the truth-vs-truth floor ``auc_floor`` = 0.5 ± ``auc_floor_std`` (:func:`null_auc_std`)
    and ``auc_pull`` = (auc − 0.5) / auc_floor_std."""
    truth = truth[np.isfinite(truth).all(axis=1)]
    generated = generated[np.isfinite(generated).all(axis=1)]
    n = min(len(truth), len(generated))
    if n < 20:
        raise ValueError(f"the classifier test needs at least 20 finite events per sample, got {n}")
    rng = np.random.default_rng(derive_seed(seed, "classifier-split"))
    truth, generated = truth[rng.permutation(len(truth))[:n]], generated[rng.permutation(len(generated))[:n]]
    x = gaussianize(truth, np.concatenate([truth, generated]))
    labels = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    half = n // 2
    train_index = np.concatenate([np.arange(half), n + np.arange(half)])
    test_index = np.concatenate([np.arange(half, n), n + np.arange(half, n)])

    torch.manual_seed(derive_seed(seed, "classifier-init"))
    model = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                          nn.Linear(hidden, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    features, targets = torch.from_numpy(x), torch.from_numpy(labels)
    generator = torch_generator(derive_seed(seed, "classifier-batches"))
    train_tensor = torch.from_numpy(train_index)
    for _ in range(epochs):
        for batch in train_tensor[torch.randperm(len(train_tensor), generator=generator)].split(batch_size):
            loss = nn.functional.binary_cross_entropy_with_logits(model(features[batch])[:, 0], targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        scores = model(features[torch.from_numpy(test_index)])[:, 0].numpy()
    n_test = n - half
    auc = roc_auc(scores[n_test:], scores[:n_test])
    floor_std = null_auc_std(n_test, n_test)
    return {"auc": auc, "auc_std": auc_standard_error(auc, n_test, n_test), "n_test": 2 * n_test,
            "auc_floor": 0.5, "auc_floor_std": floor_std, "auc_pull": (auc - 0.5) / floor_std}
