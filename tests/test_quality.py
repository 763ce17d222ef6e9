"""Slow: trained with their recipes (the defaults of `bayesgen compare`), the samplers hold
z_mumu's observables within stated multiples of their truth-vs-truth floors, which the bad
references do not: the untrained model (standard normal features mapped back) and the truth
itself with its mass scale shifted by 1 % or its distributions made 20 % wider.

Run with ``python -m pytest -m slow tests/test_quality.py -s`` (66 minutes on one thread of a
shared 2-core machine: the three recipes train for 17–19 CPU-minutes each; it prints the table
below).

Measured (2-core AMD EPYC, shared, one thread; each recipe on 200,000 events, 50,000 truth and
generated events, floors from 3 truth pairs; the Drell–Yan truth with PDFs, ISR and QED FSR; the
default features, η₂ in its window; DDPM and CFM with 100 network calls per event),
W1 / floor · largest bulk deviation / floor:

    observable  ddpm       cfm        inn        untrained    truth     mass +1 %  20 % wider
    mu1_pt      1.8 · 1.5  2.3 · 1.5  0.9 · 1.1   14.8 · 29.2  0.8 · 1.0   0.8 · 1.0    5.6 · 6.6
    mu1_eta     1.6 · 1.3  1.4 · 0.8  1.4 · 0.9    6.5 · 5.4   1.4 · 1.1   1.4 · 1.1   14.2 · 2.5
    mu2_pt      1.3 · 2.1  1.1 · 2.2  1.0 · 2.3   13.5 · 13.9  0.8 · 1.1   0.8 · 1.1    7.2 · 27.5
    mu2_eta     1.5 · 1.0  1.3 · 0.6  1.0 · 1.0    2.7 · 5.3   1.2 · 0.9   1.2 · 0.9   12.7 · 2.5
    m_mumu      1.5 · 0.9  1.3 · 0.7  1.3 · 1.1    5.0 · 7.3   1.0 · 1.4   3.5 · 9.5    3.8 · 4.3
    pt_mumu     1.6 · 0.7  1.6 · 0.7  0.8 · 0.3    6.4 · 4.4   0.8 · 0.4   0.8 · 0.4    5.8 · 6.7
    y_mumu      1.5 · 1.1  1.4 · 1.0  1.2 · 1.0    3.4 · 3.4   1.2 · 0.9   1.2 · 0.9   12.7 · 9.9
    dphi_mumu   1.5 · 1.2  0.9 · 1.0  0.8 · 1.1    4.4 · 2.5   0.9 · 0.9   0.9 · 0.9    6.7 · 2.4
    dr_mumu     1.4 · 1.0  1.0 · 1.2  0.9 · 0.5   15.8 · 31.6  1.2 · 0.6   1.2 · 0.6    7.4 · 6.6
    classifier AUC − 0.5 in truth-vs-truth spreads: ddpm 1.2, cfm −0.4, inn −0.6, untrained 80

The inn column is its recipe with permutations in front of the couplings (``mixing``), measured
alone with the same command (``bayesgen compare --samplers inn --events 50000 --sample-steps 100``;
25.4 min on one thread, at the 12,000 steps the recipe had until it moved to 10,000, the number
that keeps its both-core run within 20 minutes: docs/precision_mixing.md); with the rotations it
had before, that column read p_T1 1.5 · 1.3, η₁ 1.6 · 0.9, p_T2 1.5 · 0.7 and the AUC pull −1.7.

CFM fails the W1 criterion on the leading muon's p_T (2.3 × its floor, its bulk deviation 1.5 ×):
the same miss as in docs/precision.md (2.9 × on 200,000 events). The failure is real and the test
reports it. DDPM and the INN pass everything. At a medium budget (4,000 steps of a 128 × 3
network for every sampler) all three failed on the leading muon's p_T (2.7, 3.6 and 2.0), and
DDPM and CFM also failed on p_T(μμ) (2.7 each), which is why the test trains the recipes.

The φ of each muon is re-drawn uniformly and right even untrained, so the φ's are not checked.
Thresholds:

* every observable but the mass and the φ's: W1 ≤ 2 × floor — the untrained model and the wider
  truth reach at least 2.7 (the untrained model's η₂, which its window keeps in the acceptance);
* M_μμ: W1 ≤ 4 × floor and bulk deviation ≤ 3.5 × floor — all three samplers hold it (1.3–1.5 ·
  0.7–0.9, with the mass coordinate of the feature map), the wider truth (3.8 · 4.3), the shifted
  truth (3.5 · 9.5) and the untrained model do not;
* classifier: AUC − 0.5 ≤ 30 of its truth-vs-truth spreads — the trained models sit within ±2, the
  untrained model at 80.
"""
import json

import numpy as np
import pytest

from bayesgen.app.cli import main
from bayesgen.engine.model import TrainedModel
from bayesgen.validation.classifier import classifier_two_sample_test
from bayesgen.validation.fidelity import Criterion, scaled, widened
from bayesgen.validation.floors import with_floors
from bayesgen.validation.metrics import observable_metrics
from bayesgen.validation.report import classifier_inputs, finite_observables

EVENTS = 50_000
SAMPLERS = ("ddpm", "cfm", "inn")
M_MUMU = Criterion(w1_limit=4.0, dev_limit=3.5)
W1_LIMIT = 2.0          #: W1 / floor on every other observable the untrained model gets wrong
AUC_PULL_LIMIT = 30.0   #: (AUC − 0.5) / its truth-vs-truth spread


def bad_references(out, floors) -> tuple[dict, dict]:
    """Metrics (with the compare's floors) of the untrained model and of distorted truth, each
    against fresh truth of the same size; and the untrained model's classifier result."""
    model = TrainedModel.load(out / "runs" / "cfm", "cpu")
    process = model.process
    rng = np.random.default_rng(7)
    untrained = model.preprocessor.inverse(rng.normal(size=(EVENTS, process.n_features)), rng)
    truth_events = process.sample(EVENTS, seed=101)
    truth, other = (finite_observables(process, events)[0] for events in (truth_events, process.sample(EVENTS, seed=202)))
    references = {"untrained": finite_observables(process, untrained)[0], "truth": other,
                  "mass +1 %": {name: scaled(v, 1.01) if name == "m_mumu" else v for name, v in other.items()},
                  "20 % wider": {name: widened(v, 1.2) for name, v in other.items()}}
    scored = {label: {name: with_floors(observable_metrics(truth[name], values[name], process.binnings[name].edges),
                                        floors[name]) for name in process.binnings}
              for label, values in references.items()}
    auc = classifier_two_sample_test(classifier_inputs(process, truth_events), classifier_inputs(process, untrained))
    return scored, auc


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality") / "compare"
    assert main(["compare", "--samplers", ",".join(SAMPLERS), "--events", str(EVENTS), "--sample-steps", "100",
                 "--out", str(out)]) == 0
    samplers = json.loads((out / "compare.json").read_text())["samplers"]
    floors = {name: {k: v for k, v in m.items() if "_floor" in k} for name, m in samplers["cfm"]["observables"].items()}
    scored, untrained_auc = bad_references(out, floors)
    table = {**{label: s["observables"] for label, s in samplers.items()}, **scored}
    print("\nW1 / floor · bulk deviation / floor")
    for name in floors:
        print(f"{name:<10}" + "".join(f"  {label}: {m[name]['w1_over_floor']:.1f} · {m[name]['max_rel_dev_bulk_over_floor']:.1f}"
                                      for label, m in table.items()))
    print("AUC pulls:", {label: round(s["classifier"]["auc_pull"], 1) for label, s in samplers.items()},
          "untrained", round(untrained_auc["auc_pull"], 1))
    # the re-drawn φ are right even untrained and test nothing; the mass has its own criterion
    checked = [name for name in floors if name != "m_mumu" and not name.endswith("_phi")]
    return samplers, scored, untrained_auc, checked


@pytest.mark.slow
def test_the_bad_references_fail_the_criteria(quality):
    _, scored, untrained_auc, checked = quality
    assert len(checked) >= 8
    assert M_MUMU.holds(scored["truth"]["m_mumu"])
    for bad in ("untrained", "mass +1 %", "20 % wider"):
        assert not M_MUMU.holds(scored[bad]["m_mumu"]), bad
    for bad in ("untrained", "20 % wider"):
        assert min(scored[bad][name]["w1_over_floor"] for name in checked) > W1_LIMIT, bad
    assert max(scored["truth"][name]["w1_over_floor"] for name in checked) <= W1_LIMIT
    assert untrained_auc["auc_pull"] > AUC_PULL_LIMIT


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_observable_and_the_classifier_within_their_floors(quality, sampler):
    samplers, _, _, checked = quality
    metrics = samplers[sampler]["observables"]
    for name in checked:
        assert metrics[name]["w1_over_floor"] <= W1_LIMIT, (name, metrics[name]["w1_over_floor"])
    assert samplers[sampler]["classifier"]["auc_pull"] <= AUC_PULL_LIMIT, samplers[sampler]["classifier"]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_mass_peak_within_its_floors(quality, sampler):
    m_mumu = quality[0][sampler]["observables"]["m_mumu"]
    assert M_MUMU.holds(m_mumu), M_MUMU.failures(m_mumu)
