"""Every written event lies in the process's support: an undertrained model sampled with few steps
(the case that once wrote 10¹³ GeV muons), the bookkeeping of drawing again, validation's count."""
import json

import numpy as np
import pytest

from bayesgen.app.cli import main
from bayesgen.app.validate import evaluate
from bayesgen.bayes import variational_layers
from bayesgen.core.errors import RunError
from bayesgen.engine.config import GenerateConfig, ValidateConfig
from bayesgen.engine.generation import MAX_ROUNDS, event_chunks, generate, generate_events, replace_outside
from bayesgen.engine.io import read_events
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import train
from bayesgen.validation.report import Truth

FEW_STEPS = dict(events=3000, sample_steps=3, batch_size=700, device="cpu", seed=7)


def written_events(path, process):
    data = read_events(path)
    return data, np.column_stack([data[q] for q in process.quantities]).astype(np.float64)


@pytest.fixture(scope="module")
def keep_and_reject(trained_run, tmp_path_factory):
    """The same undertrained generation written twice: unphysical events kept with a flag
    (ROOT), and drawn again (npz)."""
    out = tmp_path_factory.mktemp("support")
    kept = generate(trained_run, GenerateConfig(out=str(out / "kept.root"), keep_unphysical=True, **FEW_STEPS),
                    progress=False)
    drawn = generate(trained_run, GenerateConfig(out=str(out / "drawn.npz"), **FEW_STEPS), progress=False)
    return TrainedModel.load(trained_run, "cpu").process, out, kept, drawn


def test_flags_and_reported_fraction_match_a_direct_count(keep_and_reject):
    process, out, kept, _ = keep_and_reject
    data, events = written_events(out / "kept.root", process)
    outside = ~process.support(events)
    assert outside.sum() > 30, "the undertrained model should leave the support now and then"
    np.testing.assert_array_equal(data["unphysical"], outside.astype(np.uint8))
    assert kept.n_out_of_support == outside.sum()
    assert kept.out_of_support_fraction == pytest.approx(outside.mean())


def test_no_written_event_lies_outside_the_support(keep_and_reject):
    process, out, kept, drawn = keep_and_reject
    data, events = written_events(out / "drawn.npz", process)
    assert len(events) == FEW_STEPS["events"] and "unphysical" not in data
    assert process.support(events).all()
    assert np.isfinite(events).all() and events[:, [0, 3]].max() < 6500.0
    assert drawn.n_out_of_support == kept.n_out_of_support, "the first draw is the same in both modes"
    _, flagged_events = written_events(out / "kept.root", process)
    inside = process.support(flagged_events)
    np.testing.assert_array_equal(events[inside], flagged_events[inside])
    assert not np.isclose(events[~inside], flagged_events[~inside]).all(axis=1).any()


def test_drawing_again_is_reproducible(keep_and_reject, trained_run, tmp_path):
    process, out, _, _ = keep_and_reject
    generate(trained_run, GenerateConfig(out=str(tmp_path / "again.npz"), **FEW_STEPS), progress=False)
    np.testing.assert_array_equal(written_events(tmp_path / "again.npz", process)[1],
                                  written_events(out / "drawn.npz", process)[1])


def test_cli_flag_and_stderr_line(trained_run, tmp_path, capsys):
    assert main(["generate", str(trained_run), "--events", "500", "--sample-steps", "2", "--device", "cpu",
                 "--keep-unphysical", "--out", str(tmp_path / "e.npz")]) == 0
    err = capsys.readouterr().err
    assert "of the generated events" in err and "outside the process's support" in err
    assert "kept with unphysical = 1" in err
    assert "unphysical" in read_events(tmp_path / "e.npz")


def test_validation_reports_the_fraction_and_measures_what_the_user_gets(trained_run):
    model = TrainedModel.load(trained_run, "cpu")
    config = ValidateConfig(events=2000, sample_steps=3, batch_size=700, device="cpu", seed=3)
    with pytest.warns(UserWarning, match="outside the process's support"):
        evaluation = evaluate(model, Truth.draw(model.process, 2000, 3), config)
    from bayesgen.core.seeding import derive_seed
    first_draw, _ = generate_events(model, 2000, 700, derive_seed(3, "generate"), 3, keep_unphysical=True)
    direct = (~model.process.support(first_draw.events)).mean()
    assert direct > 0.01
    assert evaluation.summary["out_of_support_fraction"] == pytest.approx(direct)
    assert json.loads(json.dumps(evaluation.summary))["out_of_support_fraction"] > 0
    assert model.process.support(evaluation.events).all()


def test_bayesian_members_draw_again_with_their_own_weights(tmp_path, tiny_config):
    """Every sampler call, the regeneration of the last chunk included, holds the ensemble's
    ``draws`` weight samples and member-major rows."""
    run = train(tiny_config(tmp_path / "b", bayesian=True, steps=300, checkpoint_every=300), progress=False)
    model = TrainedModel.load(run, "cpu")
    layer, calls, sample = variational_layers(model.sampler)[0], [], model.sampler.sample

    def spy(n, *args, **kwargs):
        calls.append((n, layer.mode, None if layer._weights is None else len(layer._weights)))
        return sample(n, *args, **kwargs)

    model.sampler.sample = spy
    chunks = list(event_chunks(model, 600, 900, seed=1, sample_steps=5, draws=3))
    assert len(calls) > len(chunks), "the undertrained model should need events drawn again"
    assert all(mode == "draws" and members == 3 and n % 3 == 0 for n, mode, members in calls)
    for chunk in chunks:
        assert model.process.support(chunk.events).all()
        assert chunk.draw.tolist() == sorted(chunk.draw.tolist())


# --- replace_outside on a fake model: which member, which condition, when to give up -----------

def fake_draw(rows, conditions, stream):
    """Candidate events: (member of the row's block, the row's condition, a coin); rows come in
    three member-major blocks."""
    coin = np.random.default_rng(stream).random(rows)
    return np.stack([np.repeat(np.arange(3), rows // 3), conditions[:, 0], coin], axis=1)


def test_replacements_keep_member_and_condition():
    rng = np.random.default_rng(0)
    n, draws = 40, 3
    conditions = np.tile(rng.integers(0, 5, (n, 1)).astype(float), (draws, 1))
    events = np.stack([np.repeat(np.arange(draws), n), conditions[:, 0], rng.random(n * draws)], axis=1)

    def support(e):
        return e[:, 2] < 0.7

    outside = ~support(events)
    replace_outside(events, outside, conditions, draws, fake_draw, support, seed=5, what="the fake model")
    assert support(events).all()
    np.testing.assert_array_equal(events[:, 0], np.repeat(np.arange(draws), n))
    np.testing.assert_array_equal(events[:, 1], conditions[:, 0])


def test_a_model_drawing_almost_nothing_physical_fails_clearly():
    events = np.zeros((300, 3))
    conditions = np.zeros((300, 1))
    outside = np.arange(300) >= 6  # 2 % in the support
    with pytest.raises(RunError, match=r"98\.0% of a chunk's events outside the process's support"):
        replace_outside(events, outside, conditions, 3, fake_draw, lambda e: e[:, 2] < 1, 0, "the fake model")
    with pytest.raises(RunError, match=f"stayed outside in {MAX_ROUNDS} rounds"):
        replace_outside(events, np.arange(300) < 30, conditions, 3, fake_draw, lambda e: e[:, 2] > 1, 0, "the fake model")
