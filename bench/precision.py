"""Quality and speed of one trained run generated in fp32 and in bf16 autocast, side by side.

Validates the run twice against the same truth (same seed, same events), once per precision,
and prints per observable W1, the largest bulk deviation and χ²/ndf, then the classifier AUC and
events/s. bf16 autocast runs on CPUs too, so the table can be made without a GPU (where it is
slow: CPUs without bf16 matrix units emulate it).

    python bench/precision.py RUN --events 50000 --sample-steps 100
"""
from __future__ import annotations

import argparse
import platform

import torch

from bayesgen.app.validate import evaluate
from bayesgen.engine.config import ValidateConfig
from bayesgen.engine.model import TrainedModel
from bayesgen.validation.report import Truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory written by `bayesgen train`")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--sample-steps", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    model = TrainedModel.load(args.run, args.device)
    device = model.sampler.device
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.machine()} CPU"
    truth = Truth.draw(model.process, args.events, ValidateConfig.seed)
    summaries = {}
    for precision in ("fp32", "bf16"):
        config = ValidateConfig(events=args.events, sample_steps=args.sample_steps, precision=precision,
                                device=args.device)
        summaries[precision] = evaluate(model, truth, config).summary
    print(f"device: {name} ({torch.get_num_threads()} CPU threads); run {args.run} "
          f"({model.config.process}, {model.config.sampler}); {args.events:,} events; cells: fp32 | bf16")
    print(f"{'observable':<14} {'W1':>21} {'bulk dev':>17} {'chi2/ndf':>13}")
    for observable in summaries["fp32"]["observables"]:
        a, b = (summaries[p]["observables"][observable] for p in ("fp32", "bf16"))
        if "skipped" in a or "skipped" in b:
            continue
        print(f"{observable:<14} {a['w1']:>10.3g}|{b['w1']:<10.3g} {a['max_rel_dev_bulk']:>8.1%}|"
              f"{b['max_rel_dev_bulk']:<8.1%} {a['chi2_ndf']:>6.2f}|{b['chi2_ndf']:<6.2f}")
    auc = [summaries[p]["classifier"] for p in ("fp32", "bf16")]
    rate = [summaries[p]["generation_events_per_s"] for p in ("fp32", "bf16")]
    print(f"{'classifier AUC':<14} {auc[0]['auc']:.3f} ± {auc[0]['auc_std']:.3f} | "
          f"{auc[1]['auc']:.3f} ± {auc[1]['auc_std']:.3f}")
    print(f"{'events/s':<14} {rate[0]:,.0f} | {rate[1]:,.0f}")


if __name__ == "__main__":
    main()
