"""Training speed: optimiser steps/s and events/s per sampler, deterministic and Bayesian.

The training data sit on the device as one tensor (small tabular data), so the loop measures
the step itself: forward, loss, backward, AdamW, EMA, plus the KL term in Bayesian mode.

    python bench/train_speed.py                   # default sizes
    python bench/train_speed.py --quick           # CPU smoke run
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from bayesgen.engine.checkpoint import load_checkpoint
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="CPU smoke sizes: 20 steps, batch 256, width 32")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.width, args.depth = 20, 256, 32, 1

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()} CPU"
    print(f"device: {name} ({torch.get_num_threads()} CPU threads); z_mumu, mlp width {args.width}, "
          f"depth {args.depth}, batch {args.batch_size:,}, {args.steps} steps (rates from the training "
          f"loop's own clock; wall adds start-up and data generation)")
    print(f"{'sampler':<8} {'mode':<13} {'steps/s':>9} {'events/s':>12} {'loop s':>8}")
    for sampler in ("ddpm", "cfm", "inn"):
        for bayesian in (False, True):
            with tempfile.TemporaryDirectory() as out:
                config = TrainConfig(sampler=sampler, bayesian=bayesian, steps=args.steps,
                                     batch_size=args.batch_size, events=max(4 * args.batch_size, 10_000),
                                     checkpoint_every=args.steps, out=out, device=device,
                                     backbone_options={"width": args.width, "depth": args.depth})
                start = time.perf_counter()
                train(config, progress=False)
                wall = time.perf_counter() - start
                loop = load_checkpoint(out)["train_seconds"]
            mode = "bayesian" if bayesian else "deterministic"
            print(f"{sampler:<8} {mode:<13} {args.steps / loop:>9.1f} {args.steps * args.batch_size / loop:>12,.0f} "
                  f"{loop:>8.1f}   (wall {wall:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
