"""The linearised band of a Laplace run: its posterior's members to first order in the weights.

Member ``m`` of the posterior, weights ``θ* + Δθ_m``, has the density ``p_m(x) ≈ p*(x) (1 −
∇_θ NLL(x) · Δθ_m)`` about the trained network's ``p*``: so the mean network's events, each
reweighted by ``w_m = 1 − ∇_θ NLL · Δθ_m``, stand for member ``m`` (the linearised predictive that
the Laplace approximation implies, Immer et al. 2021, where sampling the members' networks
answers their weight noise at every order). The members share their events: the band's σ_pred is
the members' spread itself (with the weights' own noise, about their spread / √(events in the
bin)), and the statistical error that of the shared events. The script
prints, per observable, σ_pred/mean (median over the bulk bins) and the band's coverage averaged
over truth samples, beside that of the statistical errors alone. It needs a sampler with an exact
log-likelihood (the INN) and an unconditional process.

    python bench/linearised_band.py RUN_laplace --events 1000000 --truths 10 --truth-events 200000
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from bayesgen.bayes import ensemble, variational_layers
from bayesgen.bayes.laplace import event_rows
from bayesgen.core.seeding import derive_seed, torch_generator
from bayesgen.engine.model import TrainedModel
from bayesgen.validation.histogram import BandHistogram, Histogram
from bayesgen.validation.metrics import band_metrics, coverage_over_truths
from bayesgen.validation.report import Truth

CHUNK = 20_000   #: events per gradient pass


def member_offsets(sampler: torch.nn.Module, draws: int, seed: int) -> list[torch.Tensor]:
    """Per variational layer, the members' offsets ``Δ[W | b]`` from the posterior means
    ``(draws, out, in + 1)``: the members :func:`~bayesgen.bayes.ensemble` draws with ``seed``."""
    layers = variational_layers(sampler)
    members = [[layer.drawn_offsets()[0] for layer in layers] for _ in ensemble(sampler, draws, seed)]
    return [torch.stack(per_layer) for per_layer in zip(*members)]


def linearised_weights(sampler: torch.nn.Module, features: torch.Tensor, offsets: list[torch.Tensor]) -> torch.Tensor:
    """``w_m = 1 − ∇_θ NLL(x) · Δθ_m`` ``(draws, n)`` for the events ``features`` (the network
    at its posterior means; layers seeing one row per event)."""
    weights = torch.ones(len(offsets[0]), len(features))
    for _, rows in event_rows(variational_layers(sampler), [(lambda: -sampler.log_prob(features).sum(), None)]):
        for index, gradients, centred, _ in rows:
            inputs = torch.cat([centred[:, 0], torch.ones_like(centred[:, 0, :1])], dim=1)
            weights -= torch.einsum("no,mop,np->mn", gradients[:, 0], offsets[index], inputs).detach()
    return weights


def shared_events_band(members: np.ndarray, shared: Histogram) -> BandHistogram:
    """The band of members ``(M, bins)`` whose densities all come from the events of ``shared``:
    σ_pred is their spread itself and σ_stat the shared events' error. (A :class:`BandHistogram`
    holds s_between and s_sampling, with σ²_pred = s²_between − s²_sampling and σ_stat =
    s_sampling/√M; both are set so.)"""
    sampling = shared.density_error * np.sqrt(len(members))
    spread = np.sqrt(members.std(axis=0, ddof=1) ** 2 + sampling**2)
    return BandHistogram(shared.edges, members.mean(axis=0), spread, sampling, len(members))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a Laplace run directory (bayesgen laplace)")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events of the mean network, shared by the members")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the members and the events")
    parser.add_argument("--truths", type=int, default=10, help="truth samples the coverage is averaged over")
    parser.add_argument("--truth-events", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = TrainedModel.load(args.run, "cpu")
    if model.conditions is not None:
        raise SystemExit(f"{args.run}: the linearised band is measured for unconditional processes only")
    sampler, process = model.sampler, model.process
    sampler.eval()
    offsets = member_offsets(sampler, args.draws, derive_seed(args.seed, "members"))
    observables, weights = [], []
    for index, start_row in enumerate(range(0, args.events, CHUNK)):
        rows = min(CHUNK, args.events - start_row)
        with torch.no_grad():
            features = sampler.sample(rows, generator=torch_generator(derive_seed(args.seed, "events", index), "cpu"))
        rng = np.random.default_rng(derive_seed(args.seed, "inverse", index))
        events = model.preprocessor.inverse(features.numpy(), rng, None)
        inside = process.support(events)
        weights.append(linearised_weights(sampler, features[torch.from_numpy(inside)], offsets).numpy())
        observables.append(process.observables(events[inside]))
    weights = np.concatenate(weights, axis=1)
    values = {name: np.concatenate([o[name] for o in observables]) for name in process.binnings}
    print(f"{args.run}: {weights.shape[1]:,} events in the support of {args.events:,}, {args.draws} members; weights "
          f"spread {weights.std():.3f}, {np.mean(weights < 0):.1e} negative; {time.perf_counter() - start:.0f} s "
          f"({platform.processor() or platform.machine()}, {args.threads} thread(s))")
    truths = [Truth.draw(process, args.truth_events, derive_seed(args.seed, "truth", k)) for k in range(args.truths)]
    print(f"\n| observable | σ_pred/mean | coverage over {args.truths} truth samples of {args.truth_events:,} | "
          "without the band |\n|---|---:|---:|---:|")
    for name, binning in process.binnings.items():
        band = shared_events_band(np.stack([Histogram.fill(values[name], binning.edges, w).density for w in weights]),
                                  Histogram.fill(values[name], binning.edges))
        histograms = [truth.histogram(name, binning.edges) for truth in truths]
        coverage = coverage_over_truths(histograms, band)
        print(f"| {name} | {band_metrics(histograms[0], band)['sigma_pred_rel_median']:.2%} | "
              f"{coverage['coverage_1sigma_truths']:.3f} ± {coverage['coverage_1sigma_truths_error']:.3f} | "
              f"{coverage['coverage_1sigma_stat_truths']:.3f} |")

if __name__ == "__main__":
    main()
