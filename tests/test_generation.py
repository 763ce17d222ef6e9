"""Generation to ROOT and npz: branches, units, streaming, seeds, atomic writes."""
import numpy as np
import pytest
import uproot

from bayesgen.core.errors import ConfigError
from bayesgen.engine.config import GenerateConfig
from bayesgen.engine.generation import Chunk, event_chunks, generate
from bayesgen.engine.io import NpzWriter, open_writer, read_events
from bayesgen.engine.model import TrainedModel

QUANTITIES = ["mu1_pt", "mu1_eta", "mu1_phi", "mu2_pt", "mu2_eta", "mu2_phi"]


def run_generate(run, out, **options):
    options = {"events": 1000, "sample_steps": 10, "batch_size": 300, "device": "cpu", **options}
    return generate(run, GenerateConfig(out=str(out), **options), progress=False)


def test_root_file_has_one_branch_per_quantity_in_physical_units(trained_run, tmp_path):
    stats = run_generate(trained_run, tmp_path / "events.root")
    assert stats.n_events == 1000 and stats.evaluations_per_event == 10
    with uproot.open(tmp_path / "events.root") as file:
        tree = file["events"]
        assert tree.num_entries == 1000
        assert sorted(tree.keys()) == sorted(QUANTITIES)
        arrays = tree.arrays(library="np")
    finite = np.isfinite(arrays["mu1_pt"])
    assert finite.mean() > 0.9
    assert (arrays["mu1_pt"][finite] >= 0).all()
    assert np.all(np.abs(arrays["mu1_phi"]) <= np.pi)
    assert 20 < np.median(arrays["mu1_pt"][finite]) < 200, "pT must come back in GeV, not standardised"
    assert list(tmp_path.iterdir()) == [tmp_path / "events.root"], "temporary files left behind"


def test_npz_equals_root_and_chunks_stream(trained_run, tmp_path):
    run_generate(trained_run, tmp_path / "a.root", seed=5)
    run_generate(trained_run, tmp_path / "a.npz", seed=5)
    root, npz = read_events(tmp_path / "a.root"), read_events(tmp_path / "a.npz")
    assert sorted(root) == sorted(npz)
    for name in QUANTITIES:
        assert npz[name].dtype == np.float32 and len(npz[name]) == 1000
        np.testing.assert_array_equal(root[name], npz[name])


def test_seed_reproduces_and_changes_output(trained_run, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run_generate(trained_run, tmp_path / f"{name}.npz", seed=seed, events=200)
    a, b, c = (read_events(tmp_path / f"{n}.npz")["mu1_eta"] for n in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_chunks_respect_batch_size(trained_run):
    model = TrainedModel.load(trained_run, "cpu")
    sizes = [len(chunk.events) for chunk in event_chunks(model, 1050, 500, seed=0, sample_steps=5)]
    assert sizes == [500, 500, 50]


def test_failed_generation_keeps_existing_file_and_leaves_no_partial(trained_run, tmp_path, monkeypatch):
    target = tmp_path / "events.npz"
    target.write_bytes(b"the user's earlier file")

    def broken(*args, **kwargs):
        yield Chunk(np.zeros((10, 6)), np.zeros(10, np.int32))
        raise RuntimeError("GPU fell over")

    monkeypatch.setattr("bayesgen.engine.generation.event_chunks", broken)
    with pytest.raises(RuntimeError, match="GPU fell over"):
        run_generate(trained_run, target)
    assert target.read_bytes() == b"the user's earlier file"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("suffix", [".root", ".npz"])
def test_writer_streams_many_chunks(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    with open_writer(path) as writer:
        for i in range(4):
            writer.write({"a": np.full(250, i, np.float32), "b": np.arange(250, dtype=np.float32)})
    events = read_events(path)
    np.testing.assert_array_equal(events["a"], np.repeat(np.arange(4, dtype=np.float32), 250))
    assert len(events["b"]) == 1000


def test_writer_rejects_ragged_chunks_and_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        with NpzWriter(tmp_path / "x.npz") as writer:
            writer.write({"a": np.zeros(3), "b": np.zeros(4)})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="output directory does not exist"):
        open_writer(tmp_path / "missing" / "x.root")
    with pytest.raises(ConfigError, match="unsupported output type '.csv'"):
        open_writer(tmp_path / "x.csv")


def test_failed_write_stops_generation_and_leaves_no_partial(trained_run, tmp_path, monkeypatch):
    def full_disk(self, chunk):
        raise OSError("No space left on device")

    monkeypatch.setattr("bayesgen.engine.io.RootWriter._write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_generate(trained_run, tmp_path / "events.root")
    assert list(tmp_path.iterdir()) == []
