"""Pictures and numbers of docs/physics.md from the embedded Drell–Yan generator.

    OMP_NUM_THREADS=1 python docs/physics_plots.py            # 4×10⁵ accepted events per channel
    OMP_NUM_THREADS=1 python docs/physics_plots.py --events 50000 --out /tmp/plots

Writes ``physics_*.png`` into ``--out`` (default: this folder) and prints the numbers quoted in
physics.md: cross-sections, Z p_T fractions, A_FB per mass bin, radiative tails, jet
multiplicities, Higgs p_T.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import bayesgen  # noqa: E402
from bayesgen.plugins.processes import electroweak as ew  # noqa: E402
from bayesgen.plugins.processes import h_zz_4mu  # noqa: E402
from bayesgen.plugins.processes.lorentz import pt_eta_phi  # noqa: E402
from bayesgen.plugins.processes.luminosity import drell_yan_born  # noqa: E402

MASS_EDGES = np.array([50, 60, 70, 76, 82, 86, 89, 91, 93, 96, 100, 110, 130, 170, 250, 400, 1000.0])


def collins_soper_cos(minus: np.ndarray, plus: np.ndarray) -> np.ndarray:
    """cosθ_CS with the z axis along the dilepton's longitudinal direction (as measured)."""
    pair = minus + plus
    m2 = pair[:, 3] ** 2 - np.sum(pair[:, :3] ** 2, axis=1)
    plus_minus = lambda p, s: (p[:, 3] + s * p[:, 2]) / np.sqrt(2)
    q_t2 = pair[:, 0] ** 2 + pair[:, 1] ** 2
    return (np.sign(pair[:, 2]) * 2 * (plus_minus(minus, 1) * plus_minus(plus, -1) - plus_minus(minus, -1) * plus_minus(plus, 1))
            / np.sqrt(m2 * (m2 + q_t2)))


def accepted_truth(process, n_events: int, seed: int) -> dict[str, np.ndarray]:
    """Truth events of ``process`` that pass its reconstruction, with the reconstructed
    (bare or dressed) lepton momenta before smearing, in chunks until ``n_events``."""
    rng = np.random.default_rng(seed)
    keys = ("minus", "plus", "mass", "cos_theta_star", "flavour", "n_photons")
    parts = {k: [] for k in keys}
    have = 0
    while have < n_events:
        truth = process.generate_truth(400_000, rng)
        minus, plus = process.lepton_momenta(truth)
        (pa, ea, _), (pb, eb, _) = pt_eta_phi(minus), pt_eta_phi(plus)
        keep = process.accepted(pa, ea) & process.accepted(pb, eb)
        for k, v in (("minus", minus), ("plus", plus), ("mass", truth["mass"]), ("cos_theta_star", truth["cos_theta_star"]),
                     ("flavour", truth["flavour"]), ("n_photons", truth["n_photons"])):
            parts[k].append(v[keep])
        have += int(keep.sum())
    return {k: np.concatenate(v)[:n_events] for k, v in parts.items()}


def pair_mass(minus: np.ndarray, plus: np.ndarray) -> np.ndarray:
    p = minus + plus
    return np.sqrt(np.maximum(p[:, 3] ** 2 - np.sum(p[:, :3] ** 2, axis=1), 0.0))


def afb(cos: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A_FB = (F − B)/(F + B) per MASS_EDGES bin and its binomial error."""
    values, errors = [], []
    for lo, hi in zip(MASS_EDGES[:-1], MASS_EDGES[1:]):
        sel = (mass > lo) & (mass < hi)
        n = max(int(sel.sum()), 1)
        a = np.mean(np.sign(cos[sel])) if sel.any() else np.nan
        values.append(a)
        errors.append(np.sqrt(max(1 - a * a, 0) / n))
    return np.array(values), np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    z_mumu, z_ee = bayesgen.get_process("z_mumu"), bayesgen.get_process("z_ee")
    z_ee_bare = bayesgen.get_process("z_ee", dress_cone=0.0)
    samples = {name: proc.sample(args.events, 1) for name, proc in (("z_mumu", z_mumu), ("z_ee", z_ee), ("z_ee bare", z_ee_bare))}
    observables = {name: (z_mumu if name == "z_mumu" else z_ee).observables(ev) for name, ev in samples.items()}
    key = {"z_mumu": "mumu", "z_ee": "ee", "z_ee bare": "ee"}

    # --- numbers -------------------------------------------------------------------------------
    born = drell_yan_born(50.0, 1000.0)
    print(f"sigma(M 50-1000) = {born.sigma_pb():.0f} pb, sigma(66-116) = {drell_yan_born(66.0, 116.0).sigma_pb():.0f} pb")
    for name, obs in observables.items():
        pt, m = obs[f"pt_{key[name]}"], obs[f"m_{key[name]}"]
        counts, edges = np.histogram(pt, np.arange(0, 30, 1.0))
        print(f"{name}: pT(ll) peak bin {edges[np.argmax(counts)]:.0f}-{edges[np.argmax(counts)] + 1:.0f} GeV, "
              f"median {np.median(pt):.1f} GeV, P(pT>50) = {np.mean(pt > 50):.3f}, P(pT<5) = {np.mean(pt < 5):.3f}; "
              f"P(M < 85 GeV | 60 < M < 120) = {np.mean(m[(m > 60) & (m < 120)] < 85):.3f}")

    # --- M_ll, pT_ll, y_ll ---------------------------------------------------------------------
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, obs in observables.items():
        k = key[name]
        axes[0].hist(obs[f"m_{k}"], np.linspace(50, 150, 201), histtype="step", density=True, label=name)
        axes[1].hist(obs[f"pt_{k}"], np.geomspace(0.3, 500, 61), histtype="step", density=True, label=name)
        axes[2].hist(obs[f"y_{k}"], np.linspace(-2.5, 2.5, 51), histtype="step", density=True, label=name)
    axes[0].set(yscale="log", xlabel=r"$M_{\ell\ell}$ [GeV]", ylabel="normalised")
    axes[1].set(xscale="log", yscale="log", xlabel=r"$p_{T,\ell\ell}$ [GeV]")
    axes[2].set(xlabel=r"$y_{\ell\ell}$")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("reconstructed events (smearing, acceptance); electrons dressed in ΔR < 0.1 unless 'bare'")
    fig.tight_layout()
    fig.savefig(args.out / "physics_dilepton.png", dpi=90)

    # --- cosθ_CS and A_FB(M) -------------------------------------------------------------------
    truth = {"z_mumu": accepted_truth(z_mumu, args.events, 2), "z_ee": accepted_truth(z_ee, args.events, 3)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    print("A_FB per mass bin (measured Collins-Soper angle, accepted events):")
    centres = np.sqrt(MASS_EDGES[1:] * MASS_EDGES[:-1])
    for name, t in truth.items():
        cos = collins_soper_cos(t["minus"], t["plus"])
        m = pair_mass(t["minus"], t["plus"])
        axes[0].hist(cos, np.linspace(-1, 1, 41), histtype="step", density=True, label=name)
        values, errors = afb(cos, m)
        axes[1].errorbar(centres, values, errors, fmt="o", ms=3, label=f"{name} (measured CS angle)")
        print(f"  {name}: " + ", ".join(f"{lo:g}-{hi:g}: {v:+.3f}" for lo, hi, v in zip(MASS_EDGES[:-1], MASS_EDGES[1:], values)))
    grid = np.geomspace(50, 1000, 400)
    for quark, label in ((ew.UP, "u ū, partonic"), (ew.DOWN, "d d̄, partonic")):
        axes[1].plot(grid, ew.forward_backward(grid**2, quark), lw=1, label=label)
    high = drell_yan_born(170.0, 1000.0).sample(args.events, np.random.default_rng(6))["cos_theta_star"]
    partonic_high = np.mean(np.sign(high))
    print(f"A_FB(M > 170 GeV) against the quark, full phase space = {partonic_high:.3f} +- "
          f"{np.sqrt((1 - partonic_high**2) / len(high)):.3f}")
    axes[1].errorbar([400], [partonic_high], fmt="D", color="C3", label="this generator, M > 170 GeV, against the quark")
    axes[1].errorbar([400], [0.599], [0.009], fmt="s", color="k", label="CMS 13 TeV, M > 170 GeV (JHEP 2022 (2022) 063)")
    axes[0].set(xlabel=r"$\cos\theta_{CS}$", ylabel="normalised")
    axes[1].set(xscale="log", xlabel=r"$M_{\ell\ell}$ [GeV]", ylabel=r"$A_{FB}$", ylim=(-0.6, 0.8))
    axes[1].axhline(0, color="grey", lw=0.5)
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "physics_afb.png", dpi=90)

    # --- jets and Higgs ------------------------------------------------------------------------
    jets = bayesgen.get_process("z_mumu_jets").sample(args.events // 10, 4)
    n_jets = jets[:, 6].astype(int)
    print("z_mumu_jets multiplicity fractions:", np.round(np.bincount(n_jets)[1:] / len(n_jets), 3))
    higgs = h_zz_4mu.generate_truth(args.events // 2, np.random.default_rng(5))["higgs"]
    pt_h = np.hypot(higgs[:, 0], higgs[:, 1])
    print(f"Higgs pT: median {np.median(pt_h):.1f} GeV, mean {pt_h.mean():.1f} GeV, P(pT > 100) = {np.mean(pt_h > 100):.3f}")
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.hist(pt_h, np.geomspace(0.3, 800, 61), histtype="step", density=True, label="H (g g, truth)")
    ax.hist(observables["z_mumu"]["pt_mumu"], np.geomspace(0.3, 800, 61), histtype="step", density=True, label="Z → μμ (reco)")
    ax.set(xscale="log", yscale="log", xlabel=r"$p_T$ [GeV]", ylabel="normalised")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "physics_higgs_pt.png", dpi=90)


if __name__ == "__main__":
    main()
