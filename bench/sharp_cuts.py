"""Sharp cuts and narrow peaks: ddpm (fixed σ), ddpm (learned σ) and ar on z_mumu and z_mumu_jets.

Trains the three samplers on the same training events with the same steps, batch and
learning rate (runs are kept in ``--out`` and reused), generates ``--events`` events per setting
and prints one table per process. Settings: ddpm with fixed σ by DDIM and by the respaced
ancestral chain, ddpm with learned σ by the respaced ancestral chain, each at ``--sample-steps``;
ar by its one pass. Columns:

* ``W1/fl`` — W1 (JetNet: mean over 5 batches) of an observable divided by its floor, the same W1
  between two independent truth samples of the same sizes; ``bulk`` — largest bulk deviation
  of its histogram (floor in the header);
* ``σ68`` — half the 16–84 % interval of M_μμ within 81–101 GeV, generated / truth;
* ``out`` — generated events outside a cut the truth obeys exactly (truth: 0), as the model draws
  them (``generate`` draws those outside the process's support again); ``edge`` — the fraction
  of events just inside the cut, generated / truth (1 = a sharp edge in the right place).

ddpm's backbone is an mlp of ``--width`` × ``--depth``; ar has its own transformer and a small mlp
head (SAMPLERS), since its head runs once per coordinate. Per model: parameters, training time
and the NLL in nats per event on 2,000 held-out events in feature space (``≤``: ddpm's bound).
Plots (``--out``): truth and ddpm DDIM at the most steps, learned σ at the fewest and most, ar.

    python bench/sharp_cuts.py --steps 1500 --train-events 100000 --events 20000 --out bench-cuts
"""
from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bayesgen.core.kinematics import wrap_phi
from bayesgen.core.process import Binning
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.generation import generate_events
from bayesgen.engine.likelihood import likelihood_summary
from bayesgen.engine.model import TrainedModel, count_parameters
from bayesgen.engine.training import train
from bayesgen.validation.histogram import Histogram
from bayesgen.validation.metrics import max_rel_dev_bulk, wasserstein_1d
from bayesgen.validation.plots import plot_observable
from bayesgen.validation.report import Truth, defined, finite_observables
from bayesgen.validation.summary import likelihood_cell

SAMPLERS = {  # label → (sampler, options, backbone options; None: --width × --depth)
    "ddpm": ("ddpm", {"schedule": "cosine", "prediction": "v"}, None),
    "ddpm_learned_sigma": ("ddpm", {"schedule": "cosine", "prediction": "v", "learn_sigma": True}, None),
    "ar": ("ar", {"width": 64, "depth": 2, "heads": 4, "components": 16}, {"width": 64, "depth": 1}),
}


@dataclass(frozen=True)
class Cut:
    """A cut the truth obeys: ``outside(events)`` flags events that violate it among those it
    applies to (``applies(events)``), ``edge(events)`` events just inside it."""

    name: str
    applies: Callable[[np.ndarray], np.ndarray]
    outside: Callable[[np.ndarray], np.ndarray]
    edge: Callable[[np.ndarray], np.ndarray]


def _every(events: np.ndarray) -> np.ndarray:
    return np.ones(len(events), dtype=bool)


def _min_muon_pt(events: np.ndarray) -> np.ndarray:
    return np.minimum(events[:, 0], events[:, 3])


def _max_muon_eta(events: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(events[:, 1]), np.abs(events[:, 4]))


def _jets(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z_mumu_jets: jets ``(n, 3, 4)`` (pT, η, φ, m) and which are present ``(n, 3)``."""
    jets = events[:, 7:].reshape(-1, 3, 4)
    return jets, np.arange(3) < events[:, 6:7]


def _delta_r(eta_a, phi_a, eta_b, phi_b) -> np.ndarray:
    return np.hypot(eta_a - eta_b, wrap_phi(phi_a - phi_b))


def _min_jet_muon_dr(events: np.ndarray) -> np.ndarray:
    jets, present = _jets(events)
    dr = [_delta_r(jets[:, i, 1], jets[:, i, 2], events[:, 1 + 3 * m], events[:, 2 + 3 * m])
          for i in range(3) for m in range(2)]
    return np.where(np.repeat(present, 2, axis=1), np.stack(dr, axis=1), np.inf).min(axis=1)


def _jj_dr(events: np.ndarray) -> np.ndarray:
    jets, _ = _jets(events)
    return _delta_r(jets[:, 0, 1], jets[:, 0, 2], jets[:, 1, 1], jets[:, 1, 2])


def _two_jets(events: np.ndarray) -> np.ndarray:
    return events[:, 6] >= 2


def _max_jet_eta(events: np.ndarray) -> np.ndarray:
    jets, present = _jets(events)
    return np.where(present, np.abs(jets[..., 1]), 0.0).max(axis=1)


MUON_CUTS = [
    Cut("pT>20", _every, lambda e: _min_muon_pt(e) < 20.0, lambda e: _min_muon_pt(e) < 21.0),
    Cut("|η|<2.4", _every, lambda e: _max_muon_eta(e) > 2.4, lambda e: _max_muon_eta(e) > 2.3),
]
PROCESSES = {  # process → (observables for W1 and plots with their binnings, cuts)
    "z_mumu": ({"m_mumu": Binning(81.0, 101.0, 40, r"$M_{\mu\mu}$ [GeV]"),
                "mu2_pt": Binning(15.0, 45.0, 30, r"$p_{T,\mu_2}$ [GeV]"),
                "mu1_eta": Binning(-2.6, 2.6, 52, r"$\eta_{\mu_1}$")}, MUON_CUTS),
    "z_mumu_jets": ({"m_mumu": Binning(81.0, 101.0, 40, r"$M_{\mu\mu}$ [GeV]"),
                     "dr_j1j2": Binning(0.0, 3.0, 30, r"$\Delta R_{j_1 j_2}$"),
                     "j1_eta": Binning(-2.7, 2.7, 54, r"$\eta_{j_1}$")},
                    [*MUON_CUTS,
                     Cut("|ηj|<2.5", _every, lambda e: _max_jet_eta(e) > 2.5, lambda e: _max_jet_eta(e) > 2.4),
                     Cut("ΔRjj>0.4", _two_jets, lambda e: _jj_dr(e) < 0.4, lambda e: _jj_dr(e) < 0.5),
                     Cut("ΔRjμ>0.4", _every, lambda e: _min_jet_muon_dr(e) < 0.4,
                         lambda e: _min_jet_muon_dr(e) < 0.5)]),
}


def peak_width(m: np.ndarray) -> float:
    """Half the 16–84 % interval of M_μμ within 81–101 GeV."""
    low, high = np.percentile(m[(m > 81.0) & (m < 101.0)], [16, 84])
    return (high - low) / 2


def cut_cells(cuts: list[Cut], truth: np.ndarray, events: np.ndarray) -> list[str]:
    cells = []
    for cut in cuts:
        t, g = truth[cut.applies(truth)], events[cut.applies(events)]
        edge = g.size and cut.edge(g).mean() / cut.edge(t).mean()
        cells.append(f"{cut.outside(g).mean():6.2%} {edge:5.2f}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="z_mumu,z_mumu_jets")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="labels of SAMPLERS to train and measure")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--train-events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--events", type=int, default=20_000, help="generated and truth events per setting")
    parser.add_argument("--sample-steps", default="20,50,100")
    parser.add_argument("--timesteps", type=int, default=1000, help="ddpm's T")
    parser.add_argument("--width", type=int, default=128, help="ddpm's backbone width")
    parser.add_argument("--depth", type=int, default=3, help="ddpm's backbone depth")
    parser.add_argument("--out", default="bench-cuts")
    args = parser.parse_args()
    steps = [int(s) for s in args.sample_steps.split(",")]
    print(f"device: {platform.machine()} CPU, {torch.get_num_threads()} threads; {args.steps} steps × "
          f"batch {args.batch_size} on {args.train_events:,} events; ddpm: mlp {args.width}×{args.depth}; "
          f"ar: {SAMPLERS['ar'][1]}, head mlp {SAMPLERS['ar'][2]}; {args.events:,} events per setting")
    for process_name in args.processes.split(","):
        observables, cuts = PROCESSES[process_name]
        models = {}
        labels = args.samplers.split(",")
        for label in labels:
            sampler, options, backbone = SAMPLERS[label]
            run = Path(args.out) / process_name / label
            if sampler == "ddpm":
                options = {**options, "timesteps": args.timesteps}
            config = TrainConfig(process=process_name, sampler=sampler, steps=args.steps, batch_size=args.batch_size,
                                 events=args.train_events, sampler_options=options, out=str(run),
                                 backbone_options=backbone or {"width": args.width, "depth": args.depth},
                                 resume=(run / "checkpoint.pt").exists(), device="cpu")
            train(config, progress=False)
            models[label] = TrainedModel.load(run, "cpu")
        process = next(iter(models.values())).process
        truth = Truth.draw(process, args.events, seed=1)
        floor = Truth.draw(process, args.events, seed=2)
        settings = [(label, solver, n) for label, solver in (("ddpm", "ddim"), ("ddpm", "ancestral"),
                                                             ("ddpm_learned_sigma", "ancestral"))
                    for n in steps if label in labels] + [("ar", None, None)] * ("ar" in labels)
        w1_floor = {name: wasserstein_1d(defined(truth.observables[name]), defined(floor.observables[name]))[0]
                    for name in observables}
        bulk_floor = {name: max_rel_dev_bulk(*(Histogram.fill(defined(s.observables[name]), b.edges)
                                               for s in (truth, floor))) for name, b in observables.items()}
        print(f"\n{process_name}: truth-vs-truth W1 floor "
              + ", ".join(f"{n} {w1_floor[n]:.3g}" for n in observables)
              + "; bulk floor " + ", ".join(f"{n} {bulk_floor[n]:.1%}" for n in observables)
              + f"; truth σ68(M_μμ) {peak_width(truth.observables['m_mumu']):.3f} GeV")
        if truth.events.shape[1] > 6:  # z_mumu_jets: the multiplicity is the condition, drawn from training
            print("jet multiplicity fractions (1, 2, 3 jets), truth: "
                  + ", ".join(f"{np.mean(truth.events[:, 6] == k):.3f}" for k in (1, 2, 3))
                  + "; generated: drawn from the training fractions, the same for every sampler")
        for label, model in models.items():
            print(f"{label}: {count_parameters(model.sampler):,} parameters, trained {model.train_seconds:.0f} s, "
                  f"NLL {likelihood_cell(likelihood_summary(model, truth.events, seed=4))} nats/event")
        header = (f"{'setting':<28}" + "".join(f"{'W1/fl bulk ' + n:>22}" for n in observables)
                  + f"{'σ68':>6}" + "".join(f"{'out edge ' + c.name:>20}" for c in cuts))
        print(header)
        plotted = {}
        for label, solver, n in settings:
            model = models[label]
            start = time.perf_counter()
            # the same conditions for all; events outside the process's support kept, to see the cuts as drawn
            generated, _ = generate_events(model, args.events, 10_000, 3, n, solver, keep_unphysical=True)
            rate = args.events / (time.perf_counter() - start)
            values, _ = finite_observables(model.process, generated.events)
            cells = []
            for name, binning in observables.items():
                g, t = defined(values[name]), defined(truth.observables[name])
                bulk = max_rel_dev_bulk(Histogram.fill(t, binning.edges), Histogram.fill(g, binning.edges))
                cells.append(f"{wasserstein_1d(t, g)[0] / w1_floor[name]:>14.1f} {bulk:>6.1%}")
            setting = label if solver is None else f"{label} {solver} {n}"
            print(f"{setting:<28}" + "".join(f"{c:>22}" for c in cells)
                  + f"{peak_width(values['m_mumu']) / peak_width(truth.observables['m_mumu']):>6.3f}"
                  + "".join(f"{c:>20}" for c in cut_cells(cuts, truth.events, generated.events))
                  + f"  {rate:,.0f} ev/s")
            if solver is None or (n == max(steps) and solver == "ddim") or label == "ddpm_learned_sigma" and n in (
                    min(steps), max(steps)):
                plotted[setting] = values
        for name, binning in observables.items():
            plot_observable(Path(args.out) / f"{process_name}_{name}.png", binning,
                            Histogram.fill(defined(truth.observables[name]), binning.edges),
                            {s: Histogram.fill(defined(v[name]), binning.edges) for s, v in plotted.items()},
                            title=process_name)


if __name__ == "__main__":
    main()
