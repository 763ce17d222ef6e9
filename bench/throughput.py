"""Generation throughput per sampler and mode, against the network's own matmul ceiling.

For each sampler setting and mode (deterministic; Bayesian with ``--draws`` members batched) it
prints events/s, network evaluations per event, the achieved TFLOP/s of the linear layers, and
the ratio to a bare matmul loop over the same layer shapes at the same batch size, measured in
the same run. Runs on CPU at small sizes (CI checks it still runs) and on a GPU at full size.

    python bench/throughput.py                       # full sizes
    python bench/throughput.py --quick               # CPU-sized smoke run
    python bench/throughput.py --bf16 --compile reduce-overhead   # on a GPU
"""
from __future__ import annotations

import argparse
import platform
import time
from contextlib import nullcontext

import torch
from torch import nn

from bayesgen.bayes import VariationalLinear, weight_draws
from bayesgen.engine.acceleration import COMPILE_MODES, compile_networks
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.model import build_sampler

N_FEATURES = 5  # z_mumu

#: (label, sampler, sampler options, sample steps, solver)
SETTINGS = [
    ("ddpm T=1000 ancestral", "ddpm", {"timesteps": 1000}, None, None),
    ("ddpm T=100 ancestral", "ddpm", {"timesteps": 100}, None, None),
    ("ddpm T=20 ancestral", "ddpm", {"timesteps": 20}, None, None),
    ("ddpm DDIM 50", "ddpm", {}, 50, "ddim"),
    ("cfm euler 50", "cfm", {}, 50, "euler"),
    ("cfm midpoint 25", "cfm", {}, 25, "midpoint"),
    ("cfm rk4 10", "cfm", {}, 10, "rk4"),
    ("inn 6 blocks", "inn", {}, None, None),
]


def linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    """``(in, out)`` of every linear layer, plain or variational."""
    return [(m.in_features, m.out_features) for m in module.modules()
            if isinstance(m, (nn.Linear, VariationalLinear))]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds(function, device: torch.device, repeats: int) -> float:
    function()  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def matmul_ceiling(shapes: list[tuple[int, int]], rows: int, device: torch.device, dtype: torch.dtype) -> float:
    """TFLOP/s of a bare loop of ``rows × in @ in × out`` products over the network's layer shapes."""
    weights = [torch.randn(i, o, device=device, dtype=dtype) for i, o in shapes]
    inputs = {i: torch.randn(rows, i, device=device, dtype=dtype) for i, _ in shapes}
    flops = sum(2 * rows * i * o for i, o in shapes)
    return flops / seconds(lambda: [inputs[w.shape[0]] @ w for w in weights], device, 5) / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per draw and call")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--compile", default="none", choices=COMPILE_MODES,
                        help="torch.compile the networks (reduce-overhead captures CUDA graphs)")
    parser.add_argument("--quick", action="store_true", help="CPU smoke sizes: 256 events, width 32, "
                        "depth 1, 4 draws, short ddpm schedules only")
    args = parser.parse_args()
    settings = SETTINGS
    if args.quick:
        args.events, args.width, args.depth, args.draws = 256, 32, 1, 4
        settings = [s for s in SETTINGS if "1000" not in s[0]]

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.machine()} CPU"
    dtype = torch.bfloat16 if args.bf16 and device.type == "cuda" else torch.float32
    print(f"device: {name} ({torch.get_num_threads()} CPU threads), {dtype}, compile {args.compile}; mlp width {args.width}, "
          f"depth {args.depth}; {args.events:,} events per draw; Bayesian mode: {args.draws} draws batched")
    print(f"{'setting':<24} {'mode':<13} {'events/s':>12} {'NFE/ev':>7} {'TFLOP/s':>8} {'ceiling':>8} {'ratio':>6}")
    for label, sampler_name, options, steps, solver in settings:
        for bayesian in (False, True):
            config = TrainConfig(sampler=sampler_name, sampler_options=options, bayesian=bayesian,
                                 bayes_options={"init_log_sigma": -3.0},
                                 backbone_options={"width": args.width, "depth": args.depth})
            torch.manual_seed(0)
            sampler = build_sampler(config, N_FEATURES).to(device).eval()
            compile_networks(sampler, args.compile)
            draws = args.draws if bayesian else 1
            rows = args.events * draws
            ensemble = weight_draws(sampler, draws, seed=0) if bayesian else nullcontext()
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dtype == torch.bfloat16 else nullcontext()
            with torch.no_grad(), ensemble, autocast:
                elapsed = seconds(lambda: sampler.sample(rows, steps=steps, solver=solver), device, 1)
            nfe = sampler.evaluations_per_event(steps, solver)
            shapes = linear_shapes(sampler)
            # each event passes every conditioner of an INN once; other samplers call one network nfe times
            calls = 1 if sampler_name == "inn" else nfe
            flops = 2 * rows * calls * sum(i * o for i, o in shapes)
            achieved = flops / elapsed / 1e12
            ceiling = matmul_ceiling(shapes, rows, device, dtype)
            mode = f"bayes ×{draws}" if bayesian else "deterministic"
            print(f"{label:<24} {mode:<13} {rows / elapsed:>12,.0f} {nfe:>7} {achieved:>8.3f} {ceiling:>8.3f} "
                  f"{achieved / ceiling:>6.0%}", flush=True)


if __name__ == "__main__":
    main()
