"""The CPU tour: train DDPM on the embedded ``z_mumu`` process, generate, validate."""
from __future__ import annotations

import time
from pathlib import Path

from bayesgen.app.validate import validate
from bayesgen.engine.config import DemoConfig, GenerateConfig, TrainConfig, ValidateConfig
from bayesgen.engine.generation import generate
from bayesgen.engine.training import train
from bayesgen.validation.report import Report

DEMO_TRAINING = dict(process="z_mumu", sampler="ddpm", backbone="mlp", batch_size=1024, lr=2e-3, events=100_000,
                     backbone_options={"width": 128, "depth": 3},
                     sampler_options={"schedule": "cosine", "prediction": "v"})


def demo(config: DemoConfig = DemoConfig(), progress: bool = True) -> Report:
    """Run the tour into ``config.out``: ``run/`` (the trained model), ``events.root`` and
    ``report/`` (metrics.json, one PNG per observable, histograms.root); return the report."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"1/3 training ddpm on z_mumu ({config.steps} steps, CPU-sized network)")
    run = train(TrainConfig(**DEMO_TRAINING, steps=config.steps, checkpoint_every=min(1000, config.steps),
                            device=config.device, threads=config.threads, out=str(out / "run"),
                            resume=(out / "run" / "checkpoint.pt").exists()), progress=progress)
    print(f"2/3 generating {config.events:,} events with {config.sample_steps} DDIM steps")
    events_file = out / "events.root"
    stats = generate(run, GenerateConfig(events=config.events, sample_steps=config.sample_steps, device=config.device,
                                         out=str(events_file)), progress=progress)
    print(f"    {events_file} ({stats.events_per_second:,.0f} events/s)")
    print(f"3/3 validating against {config.truth_events:,} fresh truth events")
    report = validate(run, ValidateConfig(events=config.truth_events, sample_steps=config.sample_steps,
                                          device=config.device, out=str(out / "report")), progress=progress)
    for name in ("m_mumu", "mu1_pt"):
        m = report["observables"][name]
        print(f"    {name:<8} W1 = {m['w1']:.3g} ± {m['w1_std']:.2g} ({m['w1_over_floor']:.1f}× its truth-vs-truth floor)"
              f"   max bulk deviation = {m['max_rel_dev_bulk']:.1%} ({m['max_rel_dev_bulk_over_floor']:.1f}× floor)"
              f"   chi2/ndf = {m['chi2_ndf']:.2f}")
    auc = report["classifier"]
    print(f"    classifier AUC = {auc['auc']:.3f} ± {auc['auc_std']:.3f} (truth vs truth: 0.5 ± {auc['auc_floor_std']:.3f})")
    print(f"done in {time.perf_counter() - start:.0f} s; plots, metrics.json and histograms.root in {report.out}")
    return report
