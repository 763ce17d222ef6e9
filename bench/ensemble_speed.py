"""Bayesian ensembles: M weight draws evaluated as one batched matmul vs a Python loop over M.

Prints events/s for both ways on the same network and the same number of events per draw.

    python bench/ensemble_speed.py --draws 20 --events 2000
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from bayesgen.bayes import ensemble, weight_draws
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.model import build_sampler


def timed(function, device: torch.device) -> float:
    function()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", default="cfm")
    parser.add_argument("--draws", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--events", type=int, default=2000, help="events per draw")
    parser.add_argument("--steps", type=int, default=10, help="sampler steps")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or "cpu")
    config = TrainConfig(sampler=args.sampler, bayesian=True, bayes_options={"init_log_sigma": -3.0},
                         backbone_options={"width": args.width, "depth": args.depth})
    sampler = build_sampler(config, 5).to(device).eval()
    print(f"device: {name} ({torch.get_num_threads()} threads); {args.sampler}, width {args.width}, "
          f"depth {args.depth}, {args.steps} steps, {args.events:,} events per draw")
    print(f"{'draws':>5} {'batched ev/s':>14} {'loop ev/s':>12} {'speed-up':>9}")
    for draws in args.draws:
        def batched():
            with torch.no_grad(), weight_draws(sampler, draws, seed=0):
                sampler.sample(args.events * draws, steps=args.steps)

        def looped():
            with torch.no_grad():
                for member in ensemble(sampler, draws, seed=0):
                    member.sample(args.events, steps=args.steps)

        total = args.events * draws
        t_batched, t_loop = timed(batched, device), timed(looped, device)
        print(f"{draws:>5} {total / t_batched:>14,.0f} {total / t_loop:>12,.0f} {t_loop / t_batched:>8.2f}x")


if __name__ == "__main__":
    main()
