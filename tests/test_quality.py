"""Slow: with a medium CPU budget every sampler holds z_mumu's observables within stated multiples
of their truth-vs-truth floors, which the bad references do not: the untrained model (standard
normal features mapped back) and the truth itself with its mass scale shifted by 1 % or its
distributions 20 % wider.

Run with ``python -m pytest -m slow tests/test_quality.py -s`` (it prints the table below).

How the thresholds were chosen: THRESHOLDS_MEASURED.
"""
import json

import numpy as np
import pytest

from bayesgen.core.cli import main
from bayesgen.core.model import TrainedModel
from bayesgen.validation.classifier import classifier_two_sample_test
from bayesgen.validation.fidelity import Criterion, scaled, widened
from bayesgen.validation.floors import with_floors
from bayesgen.validation.metrics import observable_metrics
from bayesgen.validation.report import classifier_inputs, finite_observables

EVENTS = 50_000
M_MUMU = Criterion(w1_limit=1e9, dev_limit=1e9)
W1_LIMIT = 1e9          #: W1 / floor on every observable the untrained model gets wrong
AUC_PULL_LIMIT = 1e9    #: (AUC − 0.5) / its truth-vs-truth spread


@pytest.mark.slow
def test_every_sampler_stands_within_its_floors_and_the_bad_references_do_not(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality") / "compare"
    config = out.parent / "compare.toml"
    config.write_text('[compare.backbone_options]\nwidth = 128\ndepth = 3\n'
                      '[compare.sampler_options.ddpm]\nschedule = "cosine"\nprediction = "v"\n'
                      '[compare.sampler_options.inn]\nblocks = 4\n')
    assert main(["compare", "--samplers", "ddpm,cfm,inn", "--steps", "4000", "--train-events", "100000",
                 "--batch-size", "1024", "--lr", "2e-3", "--events", str(EVENTS), "--sample-steps", "100",
                 "--out", str(out), "--config", str(config)]) == 0
    result = json.loads((out / "compare.json").read_text())
    samplers = result["samplers"]

    # The bad references, scored against fresh truth of the same size with the compare's floors.
    model = TrainedModel.load(out / "runs" / "cfm", "cpu")
    process = model.process
    rng = np.random.default_rng(7)
    untrained = model.preprocessor.inverse(rng.normal(size=(EVENTS, process.n_features)), rng)
    truth_events, other_events = process.sample(EVENTS, seed=101), process.sample(EVENTS, seed=202)
    truth, other = finite_observables(process, truth_events)[0], finite_observables(process, other_events)[0]
    references = {"untrained": finite_observables(process, untrained)[0],
                  "truth": other,
                  "mass +1 %": {name: scaled(v, 1.01) if name == "m_mumu" else v for name, v in other.items()},
                  "20 % wider": {name: widened(v, 1.2) for name, v in other.items()}}
    floors = {name: {k: v for k, v in m.items() if "_floor" in k} for name, m in samplers["cfm"]["observables"].items()}
    scored = {label: {name: with_floors(observable_metrics(truth[name], values[name], process.binnings[name].edges),
                                        floors[name]) for name in process.binnings}
              for label, values in references.items()}
    untrained_auc = classifier_two_sample_test(classifier_inputs(process, truth_events),
                                               classifier_inputs(process, untrained))
    table = {**{label: s["observables"] for label, s in samplers.items()}, **scored}
    print("\nW1 / floor · bulk deviation / floor")
    for name in process.binnings:
        print(f"{name:<10}" + "".join(f" {label}: {m[name]['w1_over_floor']:6.1f} · {m[name]['max_rel_dev_bulk_over_floor']:4.1f}"
                                      for label, m in table.items()))
    print("AUC pulls:", {label: round(s["classifier"]["auc_pull"], 1) for label, s in samplers.items()},
          "untrained", round(untrained_auc["auc_pull"], 1))

    # Observables that the untrained model already gets right (the re-drawn global φ) test nothing.
    checked = [name for name in process.binnings if scored["untrained"][name]["w1_over_floor"] > 3]
    assert len(checked) >= 8
    for label, summary in samplers.items():
        metrics = summary["observables"]
        assert M_MUMU.holds(metrics["m_mumu"]), (label, M_MUMU.failures(metrics["m_mumu"]))
        for name in checked:
            assert metrics[name]["w1_over_floor"] <= W1_LIMIT, (label, name, metrics[name]["w1_over_floor"])
        assert summary["classifier"]["auc_pull"] <= AUC_PULL_LIMIT, (label, summary["classifier"])
    assert M_MUMU.holds(scored["truth"]["m_mumu"])
    for bad in ("untrained", "mass +1 %", "20 % wider"):
        assert not M_MUMU.holds(scored[bad]["m_mumu"]), bad
    assert max(scored["untrained"][name]["w1_over_floor"] for name in checked) > W1_LIMIT
    assert untrained_auc["auc_pull"] > AUC_PULL_LIMIT
