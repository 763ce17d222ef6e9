"""Event rate of the embedded Monte Carlo processes on one CPU core, full chain.

For each process it times ``process.sample(n, seed)`` (Born, showers, decay, detector,
acceptance: accepted events out) several times and prints accepted events per second from the
fastest repeat (wall clock and CPU time of this process), the acceptance, the share of time per
stage for the Drell–Yan chain, and the machine's load average, which on a shared machine is part
of the result. Run with one thread:

    OMP_NUM_THREADS=1 python bench/event_rate.py                  # 10⁵ events, 5 repeats
    OMP_NUM_THREADS=1 python bench/event_rate.py --events 20000 --repeats 2 --processes z_mumu
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import bayesgen
from bayesgen.plugins.processes import isr, luminosity, qed_fsr
from bayesgen.plugins.processes.drell_yan import decay

PROCESSES = ("z_mumu", "z_ee", "z_mumu_jets", "h_zz_4mu")


def load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unavailable"


def timed(function, repeats: int) -> tuple[float, float]:
    """Fastest (wall, CPU) seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def stages(n: int, repeats: int) -> list[tuple[str, float]]:
    """CPU µs per generated event of each stage of the z_mumu truth chain (fastest repeat)."""
    rng = np.random.default_rng(1)
    process = bayesgen.get_process("z_mumu")
    born_sampler = luminosity.drell_yan_born(process.m_low, process.m_high)
    born = born_sampler.sample(n, rng)
    shower = isr.shower(born["x"], born["flavour"], rng)
    minus, plus, _ = decay(shower.final_state, born["cos_theta_beam"], rng, process.lepton_mass)
    truth = process.generate_truth(n, rng)
    steps = [("Born (PDFs, γ*/Z)", lambda: born_sampler.sample(n, rng)),
             ("initial-state shower", lambda: isr.shower(born["x"], born["flavour"], rng)),
             ("decay (Collins–Soper)", lambda: decay(shower.final_state, born["cos_theta_beam"], rng, process.lepton_mass)),
             ("QED FSR", lambda: qed_fsr.radiate(minus, plus, process.lepton_mass, rng)),
             ("detector", lambda: process.detector(truth, rng))]
    return [(name, timed(step, repeats)[1] / n * 1e6) for name, step in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="accepted events per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", default=",".join(PROCESSES))
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {load()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, numpy {np.__version__}")
    print(f"{'process':<14}{'events':>9}{'acceptance':>12}{'events/s (wall)':>17}{'events/s (CPU)':>16}")
    for name in args.processes.split(","):
        process = bayesgen.get_process(name)
        process.sample(1000, 0)                        # tables and caches built outside the timing
        truth_rng = np.random.default_rng(0)
        accepted = len(process.detector(process.generate_truth(20_000, truth_rng), truth_rng))
        wall, cpu = timed(lambda: process.sample(args.events, 42), args.repeats)
        print(f"{name:<14}{args.events:>9}{accepted / 20_000:>12.3f}{args.events / wall:>17,.0f}{args.events / cpu:>16,.0f}")
    print(f"\nz_mumu truth chain, CPU µs per generated event ({min(args.events, 50_000)} events, fastest of {args.repeats}):")
    for name, micro in stages(min(args.events, 50_000), args.repeats):
        print(f"  {name:<24}{micro:8.2f}")
    print(load())


if __name__ == "__main__":
    main()
