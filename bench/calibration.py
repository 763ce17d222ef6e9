"""Calibration of the Bayesian band: train on N, 4N and 16N events, validate with draws.

Prints, per training size, the median relative band width σ_pred/mean (the members' density
spread with their sampling noise removed; that noise, per member, in brackets) and the 1σ
coverage (bulk bins where |mean − truth| ≤ √(σ_pred² + σ_truth² + σ_stat²)) for a few
observables. A band that only reflects finite training data should shrink as N grows.

    python bench/calibration.py --events 10000 --out calibration
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from bayesgen.app.validate import validate
from bayesgen.engine.config import TrainConfig, ValidateConfig
from bayesgen.engine.training import train

OBSERVABLES = ("m_mumu", "mu1_pt", "mu1_eta", "dr_mumu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="z_mumu")
    parser.add_argument("--sampler", default="cfm")
    parser.add_argument("--events", type=int, default=10_000, help="N, the smallest training set")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--validation-events", type=int, default=20_000)
    parser.add_argument("--sample-steps", type=int, default=20)
    parser.add_argument("--out", default="calibration")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or 'cpu'}, "
          f"{torch.get_num_threads()} threads; {args.sampler} on {args.process}, {args.steps} steps, "
          f"{args.draws} draws, {args.validation_events:,} events per draw")
    header = f"{'N_train':>9} {'train s':>8}" + "".join(f" {name + ' σ/μ (samp.)':>22} {'cov':>5}"
                                                         for name in OBSERVABLES)
    print(header)
    for factor in (1, 4, 16):
        n = args.events * factor
        run_dir = Path(args.out) / f"n{n}"
        start = time.perf_counter()
        train(TrainConfig(process=args.process, sampler=args.sampler, steps=args.steps, events=n,
                          batch_size=min(1024, n // 4), lr=2e-3, bayesian=True, out=str(run_dir),
                          resume=(run_dir / "checkpoint.pt").exists(),
                          backbone_options={"width": args.width, "depth": 3}), progress=False)
        seconds = time.perf_counter() - start
        report = validate(run_dir, ValidateConfig(events=args.validation_events, draws=args.draws,
                                                  sample_steps=args.sample_steps))
        row = f"{n:>9,} {seconds:>8.0f}"
        for name in OBSERVABLES:
            m = report["observables"][name]
            row += (f" {m['sigma_pred_rel_median']:>12.3%} ({m['sigma_sampling_rel_median']:6.2%})"
                    f" {m['coverage_1sigma']:>5.0%}")
        print(row, flush=True)


if __name__ == "__main__":
    main()
