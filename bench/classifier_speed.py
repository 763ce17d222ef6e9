"""Time of the classifier two-sample test on 10⁵ events per sample (two Gaussians).

    python bench/classifier_speed.py
"""
import platform
import time

import numpy as np
import torch

from bayesgen.validation.classifier import classifier_two_sample_test

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} torch threads")
    print(f"{'events':>8} {'features':>8} {'AUC':>13} {'seconds':>8}")
    for n, d in ((10_000, 5), (100_000, 5), (100_000, 16)):
        truth, generated = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        generated[:, 0] *= 1.05
        start = time.perf_counter()
        result = classifier_two_sample_test(truth, generated)
        print(f"{n:>8,} {d:>8} {result['auc']:.3f} ± {result['auc_std']:.3f} {time.perf_counter() - start:>8.1f}")
