"""What sizing the generated sample from the truth saves: one run on a file, validated twice.

Trains a small CFM model on the muon pairs of the real ROOT file ``tests/data/uproot-HZZ.root``
(2,421 CMS-like events; its held-out part, 20 %, is the validation truth), unless RUN is given,
then validates it with the default sizes (ten generated events per truth event) and with
``--events 100000`` (what every validation generated before), and prints per setting the sizes,
the wall time and how the metrics stand to their truth-vs-truth floors.

    python bench/validation_sizes.py [RUN] [--sample-steps 50]
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import bayesgen

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "uproot-HZZ.root"
MAPPING = {"like": "z_mumu", "tree": "events", "weight": "EventWeight",
           "collections": {"mu": {"px": "Muon_Px", "py": "Muon_Py", "pz": "Muon_Pz", "E": "Muon_E",
                                  "charge": "Muon_Charge", "opposite_charge": True}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="run directory (default: train one on uproot-HZZ.root)")
    parser.add_argument("--sample-steps", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="validation-sizes-"))
    run = args.run or bayesgen.train(
        progress=False, process="root_file", sampler="cfm", steps=300, batch_size=256, events=1500,
        out=str(work / "run"), backbone_options={"width": 64, "depth": 2},
        process_options={"path": str(DATA), "mapping": MAPPING, "allow_fewer": True})
    print(f"machine: {platform.machine()} CPU, {torch.get_num_threads()} torch thread(s); run {run}")
    print(f"{'generated events':<28} {'truth':>6} {'generated':>10} {'wall [s]':>9} "
          f"{'median W1/floor':>16} {'classifier AUC':>15}")
    for label, events in (("default (10 × truth)", None), ("--events 100000", 100_000)):
        start = time.perf_counter()
        report = bayesgen.validate(run, progress=False, events=events, sample_steps=args.sample_steps,
                                   out=str(work / f"report-{events}"))
        seconds = time.perf_counter() - start
        ratios = [m["w1_over_floor"] for m in report["observables"].values() if "w1_over_floor" in m]
        auc = report["classifier"]
        print(f"{label:<28} {report['n_truth']:>6,} {report['n_generated']:>10,} {seconds:>9.1f} "
              f"{np.median(ratios) if ratios else float('nan'):>16.2f} {auc['auc']:>7.3f} ± {auc['auc_std']:.3f}")


if __name__ == "__main__":
    main()
