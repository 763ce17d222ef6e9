"""Writers that cannot collide or leak: one atomic-write helper, a lock per run directory, modes
that follow the umask, temporary files of dead writers removed."""
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bayesgen.app.cli import main
from bayesgen.core.errors import RunError
from bayesgen.engine.io import HOST, AtomicFile, open_writer, read_events, write_json
from bayesgen.engine.lock import LOCK_NAME, RunLock


def dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_outputs_honour_the_umask_and_keep_a_replaced_files_mode(tmp_path, umask_027, trained_run):
    write_json(tmp_path / "a.json", {"x": 1})
    assert mode(tmp_path / "a.json") == 0o640  # not mkstemp's 0600
    (tmp_path / "b.json").write_text("{}")
    os.chmod(tmp_path / "b.json", 0o664)
    write_json(tmp_path / "b.json", {"x": 2})
    assert mode(tmp_path / "b.json") == 0o664
    assert main(["generate", str(trained_run), "--events", "100", "--sample-steps", "2", "--keep-unphysical",
                 "--out", str(tmp_path / "events.root")]) == 0  # a 40-step model: the file's mode is the point
    assert mode(tmp_path / "events.root") == 0o640
    with open_writer(tmp_path / "c.npz") as writer:
        writer.write({"x": np.arange(3.0)})
    assert mode(tmp_path / "c.npz") == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "c.npz", "events.root"]


def test_temporary_names_are_unique_per_writer_and_hidden(tmp_path):
    first, second = AtomicFile(tmp_path / "x.root"), AtomicFile(tmp_path / "x.root")
    assert first.temporary != second.temporary
    for part in (first, second):
        assert part.temporary.name.startswith(f".x.{HOST}_{os.getpid()}_") and part.temporary.name.endswith(".part.root")
    second.discard()
    with first as temporary:
        temporary.write_text("done")
    assert (tmp_path / "x.root").read_text() == "done" and [p.name for p in tmp_path.iterdir()] == ["x.root"]
    with pytest.raises(ZeroDivisionError), AtomicFile(tmp_path / "x.root") as temporary:
        temporary.write_text("half")
        1 / 0
    assert (tmp_path / "x.root").read_text() == "done" and [p.name for p in tmp_path.iterdir()] == ["x.root"]


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from bayesgen.engine.io import open_writer
    writer = open_writer(sys.argv[1])
    writer.write({"x": np.arange(10.0)})
    print("writing", flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("suffix", [".root", ".npz"])
def test_the_next_writer_removes_what_a_killed_writer_left(tmp_path, suffix):
    target = tmp_path / f"events{suffix}"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.kill()
    child.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left and all(name.startswith(".events.") for name in left)  # a hidden part (and the npz spool)
    alive = AtomicFile(tmp_path / "other.root")  # a live writer's part of another file stays
    foreign = tmp_path / f".events.otherhost_{dead_pid()}_00ff.part{suffix}"  # another host's: not ours to judge
    foreign.write_text("")
    with open_writer(target) as writer:
        writer.write({"x": np.arange(4.0)})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, alive.temporary.name, foreign.name])
    np.testing.assert_array_equal(read_events(target)["x"], np.arange(4.0))


HOLDER = textwrap.dedent("""
    import sys, time
    from bayesgen.engine.lock import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_a_second_writer_of_a_run_directory_gets_one_line_naming_the_holder(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", "--steps", "2", "--events", "512", "--batch-size", "256", "--out", str(run)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"bayesgen: error: run directory {run} is in use by process {holder.pid} on "
                       f"{os.uname().nodename}; wait for it to finish or choose another --out"]
        with pytest.raises(RunError, match=f"in use by process {holder.pid}"), RunLock(run):
            pass
    finally:
        holder.kill()
        holder.wait()
    # killed, the holder left its lock file behind: the next writer takes it over, then removes it
    assert (run / LOCK_NAME).read_text().split()[0] == str(holder.pid)
    config = tmp_path / "c.toml"
    config.write_text("[train.backbone_options]\nwidth = 8\ndepth = 1\n")
    assert main(["train", "--steps", "2", "--events", "512", "--batch-size", "256", "--out", str(run),
                 "--config", str(config)]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json"]


def test_a_lock_that_fails_leaves_no_directory_behind(tmp_path):
    with RunLock(tmp_path / "new") as lock:
        assert (tmp_path / "new" / LOCK_NAME).read_text().split() == [str(os.getpid()), os.uname().nodename]
        with pytest.raises(RunError), RunLock(tmp_path / "new"):
            pass
        assert lock.path.exists()  # the holder keeps its lock when a second one fails
    assert not (tmp_path / "new").exists()  # created here, left empty: removed
    (tmp_path / "kept").mkdir()
    with RunLock(tmp_path / "kept"):
        pass
    assert (tmp_path / "kept").is_dir()
