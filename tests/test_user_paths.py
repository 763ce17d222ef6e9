"""The user's two front doors, end to end at toy sizes: the Python API exactly as the README's
"Python API" block shows it, and ``bayesgen demo``, checking the files each promises."""
import json
import math
import re
from pathlib import Path

import hist
import numpy as np
import pytest
import uproot

import bayesgen
from bayesgen.app.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
NETWORK = {"backbone_options": {"width": 32, "depth": 2}, "batch_size": 256, "lr": 2e-3}
DDPM = {"schedule": "cosine", "prediction": "v"}  # as the demo: a hundred steps suffice for sane events
#: sizes laid over the README's, per function: the calls and their other options stay as written
TOY = {"train": {"steps": 100, "events": 4096, **NETWORK, "sampler_options": DDPM},
       "generate": {"events": 2000, "sample_steps": 10},
       "validate": {"events": 2000, "sample_steps": 10},
       "compare": {"steps": 100, "train_events": 4096, "events": 2000, "sample_steps": 10, **NETWORK,
                   "sampler_options": {"ddpm": DDPM}}}
METRICS = {"w1", "w1_std", "w1_floor", "w1_over_floor", "max_rel_dev_bulk", "max_rel_dev_bulk_over_floor",
           "chi2_ndf", "chi2_ndf_over_floor", "n_truth", "n_generated"}


def readme_api_block() -> str:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


class ToySized:
    """``bayesgen`` as the README calls it, with the :data:`TOY` sizes laid over the README's
    and no progress bars."""

    def __getattr__(self, name):
        function = getattr(bayesgen, name)
        if name not in TOY:
            return function
        return lambda *args, **options: function(*args, **{**options, **TOY[name], "progress": False})


def test_the_readme_api_block_runs_and_gives_what_it_promises(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    block = readme_api_block()
    assert {"bayesgen.train(", "bayesgen.generate(", "bayesgen.validate(", "bayesgen.compare("} <= {
        call + "(" for call in re.findall(r"bayesgen\.\w+", block)}
    exec(block.replace("import bayesgen\n", ""), {"bayesgen": ToySized(), **namespace}, namespace)

    run = namespace["run"]
    assert Path(run) == Path("runs/z") and (tmp_path / "runs/z/checkpoint.pt").is_file()
    with uproot.open(tmp_path / "z.root") as file:
        tree = file["events"]
        assert tree.num_entries == TOY["generate"]["events"]
        arrays = tree.arrays(library="np")
    process = bayesgen.get_process("z_mumu")
    assert set(arrays) == set(process.quantities)
    events = np.column_stack([arrays[q] for q in process.quantities]).astype(np.float64)
    assert process.support(events).all()

    report = namespace["report"]
    assert report.out == Path("runs/z/report")
    assert json.loads((tmp_path / "runs/z/report/metrics.json").read_text()) == json.loads(json.dumps(report))
    m_mumu = report["observables"]["m_mumu"]
    assert METRICS <= set(m_mumu) and m_mumu["n_truth"] == m_mumu["n_generated"] == 2000
    assert all(math.isfinite(m_mumu[k]) and m_mumu[k] >= 0 for k in METRICS)
    assert str(m_mumu) in capsys.readouterr().out  # the block prints it
    h = namespace["h"]
    assert isinstance(h, hist.Hist) and 0.9 * 2000 < h.sum().value <= 2000  # a few fall outside the range
    assert {p.stem for p in report.plots} == set(report["observables"])

    result = namespace["result"]
    assert set(result["samplers"]) == {"ddpm", "cfm"}
    assert result == json.loads((tmp_path / "cmp/compare.json").read_text())
    table = (tmp_path / "cmp/compare.md").read_text()
    assert "| ddpm |" in table and "| cfm |" in table and "| m_mumu |" in table
    for summary in result["samplers"].values():
        assert summary["training_steps"] == 100 and METRICS <= set(summary["observables"]["m_mumu"])
        assert 0.0 <= summary["classifier"]["auc"] <= 1.0


def test_demo_end_to_end_at_toy_size(tmp_path, capsys):
    out = tmp_path / "tour"
    assert main(["demo", "--out", str(out), "--steps", "20", "--events", "500", "--truth-events", "1000",
                 "--sample-steps", "5"]) == 0
    printed = capsys.readouterr().out
    assert "1/3 training ddpm on z_mumu (20 steps" in printed and f"in {out / 'report'}" in printed
    with uproot.open(out / "events.root") as file:
        assert file["events"].num_entries == 500
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["training_steps"] == 20 and metrics["sample_steps"] == 5
    assert metrics["n_truth"] == metrics["n_events"] == 1000
    for name in ("m_mumu", "mu1_pt"):  # the two the tour prints
        m = metrics["observables"][name]
        assert METRICS <= set(m) and all(math.isfinite(m[k]) for k in METRICS)
        assert f"{name:<8} W1 = {m['w1']:.3g}" in printed
        assert m["w1_floor"] > 0 and m["w1_over_floor"] == pytest.approx(m["w1"] / m["w1_floor"])
    # twenty steps leave the model far from the truth, and the classifier must see it
    assert metrics["classifier"]["auc_pull"] > 3
    assert {p.stem for p in (out / "report").glob("*.png")} == set(metrics["observables"])
    assert all(p.stat().st_size > 10_000 for p in (out / "report").glob("*.png"))
    with uproot.open(out / "report" / "histograms.root") as file:
        assert {"truth/m_mumu", "generated/m_mumu"} <= {key.split(";")[0] for key in file.keys()}
