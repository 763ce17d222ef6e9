"""The likelihood entry of metrics.json: exact, bound or skipped, in nats per event and bits per dimension."""
import math
from types import SimpleNamespace

from bayesgen.engine.likelihood import LIKELIHOOD_EVENTS, likelihood_summary
from bayesgen.engine.model import TrainedModel


def test_ddpm_reports_its_bound_on_at_most_the_bounded_number_of_events(trained_run):
    model = TrainedModel.load(trained_run, "cpu")
    events = model.process.sample(LIKELIHOOD_EVENTS + 500, seed=7)
    summary = likelihood_summary(model, events, seed=1)
    assert summary["kind"] == "bound" and summary["n_events"] == LIKELIHOOD_EVENTS
    assert summary["bits_per_dim"] == summary["nll_per_event"] / (5 * math.log(2))
    assert 0 < summary["nll_per_event_error"] < 0.1 * abs(summary["nll_per_event"])
    assert likelihood_summary(model, events, seed=1) == summary  # seeded noise
    assert likelihood_summary(model, events[:100], seed=1)["n_events"] == 100


def test_detector_level_processes_are_skipped():
    model = SimpleNamespace(process=SimpleNamespace(feature_shape=(300, 3)), sampler=None)
    assert likelihood_summary(model, None, seed=0) == {"skipped": "detector-level features (300, 3)"}
