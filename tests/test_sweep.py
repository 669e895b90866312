"""Sweeps on real worker processes: the same runs as `simnet run`, failures and lost workers marked,
resume after an interruption, bad grids refused before anything starts."""
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import simnet as sn
from simnet.cli import main
from test_faults import last_step, wait_until

TIMEOUT = 60

TINY = """name = "tiny"
seed = 0

[network]
layers = [2, 2, 1]
output = "sigmoid"

[data]
kind = "xor"
samples = 16

[training]
steps = 15
learning_rate = 0.5
loss = "bce"

[record]
every = 5
gifs = []

[expect]
accuracy_min = 0.5
"""


def tiny(tmp_path, extra=""):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY + extra)
    return path


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def start(*argv):
    return subprocess.Popen([sys.executable, "-m", "simnet", "sweep", *map(str, argv), "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def same_as_single_runs(tmp_path, sweep_dir, scenario, capsys):
    """Every run of the sweep in `sweep_dir` equals `simnet run --set ... --set seed=S`: numbers and trace bytes."""
    table = rows(sweep_dir / "runs.csv")
    assert table and all(row["status"] in ("ok", "expectation_failed") for row in table)
    for row in table:
        single = tmp_path / "single" / row["run"]
        settings = ["--set", f"training.learning_rate={row['training.learning_rate']}", "--set", f"seed={row['seed']}"]
        main(["run", str(scenario), "-o", str(single), "-q", "--no-gif", *settings])
        summary = json.loads((single / "summary.json").read_text())
        assert float(row["loss"]) == summary["loss"] and float(row["accuracy"]) == summary["accuracy"]
        assert int(row["steps"]) == summary["steps"]
        run_dir = sweep_dir / row["path"]
        assert (run_dir / "trace.sqlite").read_bytes() == (single / "trace.sqlite").read_bytes()
        assert (run_dir / "loss.png").read_bytes() == (single / "loss.png").read_bytes()
    capsys.readouterr()


def test_two_local_workers_give_the_runs_simnet_run_gives(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    scenario = tiny(tmp_path)
    out = tmp_path / "sweep"
    code = main(["sweep", str(scenario), "--grid", "training.learning_rate=[0.1, 2.0]", "--seeds", "0-2",
                 "--workers", "2", "-o", str(out), "-q"])
    table = rows(out / "runs.csv")
    assert code == (0 if all(r["status"] == "ok" for r in table) else 1)
    assert [r["run"] for r in table] == [f"learning_rate={lr},seed={s}" for lr in ("0.1", "2.0") for s in range(3)]
    same_as_single_runs(tmp_path, out, scenario, capsys)
    configs = rows(out / "configs.csv")
    assert [c["runs"] for c in configs] == ["3", "3"]
    for config in configs:
        met = sum(r["status"] == "ok" for r in table if r["training.learning_rate"] == config["training.learning_rate"])
        assert config["expect.accuracy_min"] == f"{met} of 3"
    definition = json.loads((out / "sweep.json").read_text())
    assert definition["counts"] == {s: n for s in ("ok", "expectation_failed")
                                    if (n := sum(r["status"] == s for r in table))}
    assert (out / "sweep.png").stat().st_size > 0 and not (out / ".work").exists()


def test_a_dask_local_cluster_gives_the_same_runs(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed", reason="the test extra installs Dask")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    scenario = tiny(tmp_path)
    out = tmp_path / "sweep"
    main(["sweep", str(scenario), "--grid", "training.learning_rate=[0.1, 2.0]", "--seeds", "0,1",
          "--dask", "local", "--workers", "2", "-o", str(out), "-q"])
    assert len(rows(out / "runs.csv")) == 4
    assert json.loads((out / "sweep.json").read_text())["sweep"]["backend"] == "dask"
    same_as_single_runs(tmp_path, out, scenario, capsys)


def test_the_python_api_returns_the_rows(tmp_path):
    result = sn.sweep(tiny(tmp_path), grid={"training.steps": [3, 6]}, seeds=[4], workers=1, output=tmp_path / "s")
    assert [(r["run"], r["steps"], r["seed"]) for r in result.runs] == [("steps=3,seed=4", "3", "4"),
                                                                        ("steps=6,seed=4", "6", "4")]
    assert [c["config"] for c in result.configs] == ["steps=3", "steps=6"]
    frame = result.to_pandas()
    assert list(frame["run"]) == [r["run"] for r in result.runs]


def test_failures_do_not_sink_the_sweep(tmp_path, capsys):
    # a learning rate of 5 makes this regression diverge; the others finish, and each run has its status
    scenario = tmp_path / "sine.toml"
    scenario.write_text('[network]\nlayers = [1, 4, 1]\noutput = "linear"\n[data]\nkind = "sine"\nsamples = 20\n'
                        '[training]\nsteps = 40\nlearning_rate = 0.01\n[record]\ngifs = []\n'
                        '[expect]\nloss_max = 0.01\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario), "--grid", "training.learning_rate=[0.01, 5.0]", "--seeds", "0,1",
                 "--workers", "2", "-o", str(out), "-q"]) == 1
    statuses = {r["run"]: (r["status"], r["loss"]) for r in rows(out / "runs.csv")}
    assert len(statuses) == 4
    assert {statuses[f"learning_rate=5.0,seed={s}"] for s in (0, 1)} == {("diverged", "")}
    assert {statuses[f"learning_rate=0.01,seed={s}"][0] for s in (0, 1)} == {"expectation_failed"}
    for s in (0, 1):
        with sn.open_trace(out / "runs" / f"learning_rate=5.0,seed={s}") as trace:
            assert trace.end_reason == "diverged"


def worker_running(sweep_pid, run_dir):
    """The pid of the sweep's worker process whose trace writer has a file open in `run_dir`."""
    def children(pid):
        try:
            return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
        except OSError:
            return []

    for worker in children(sweep_pid):
        for process in [worker, *children(worker)]:
            try:
                fds = list(Path(f"/proc/{process}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(fd).startswith(str(run_dir)):
                        return worker
                except OSError:
                    continue
    return None


def test_a_worker_killed_in_the_middle_of_a_run_marks_that_run_and_the_rest_finish(tmp_path):
    scenario = tiny(tmp_path)
    out = tmp_path / "sweep"
    process = start(scenario, "--grid", "training.steps=[10, 12, 1000000]", "--seeds", "0,1", "--workers", "2",
                    "-o", out)
    long_run = "steps=1000000,seed=0"
    scratch = out / ".work" / long_run / "run"
    worker = wait_until(lambda: last_step(scratch) and worker_running(process.pid, scratch),
                        "worker training the long run")
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: len(rows(out / "runs.csv")) == 5, "the killed run's row and the short runs' rows")
    # the other long run (seed 1) would take minutes: once it started, the sweep is asked to stop
    wait_until(lambda: (out / ".work" / "steps=1000000,seed=1" / "run" / "trace.sqlite").exists(), "second long run")
    process.send_signal(signal.SIGINT)
    assert "stopping once the runs under way finish" in process.stderr.readline()
    process.send_signal(signal.SIGINT)  # and to abandon it
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130
    table = {r["run"]: r for r in rows(out / "runs.csv")}
    assert table[long_run]["status"] == "error" and "killed by SIGKILL" in table[long_run]["error"]
    for run in ("steps=10,seed=0", "steps=10,seed=1", "steps=12,seed=0", "steps=12,seed=1"):
        assert table[run]["status"] in ("ok", "expectation_failed"), table[run]
    # the killed run's record stays where it belongs
    with sn.open_trace(out / "runs" / long_run) as trace:
        assert trace.end_reason is None and not trace.running and trace.last_step >= 1
    # so does the abandoned one's, without a row: the next invocation runs it again
    assert (out / "runs" / "steps=1000000,seed=1" / "trace.sqlite").is_file()
    assert "steps=1000000,seed=1" not in table and not (out / ".work").exists()


def test_resume_after_an_interrupted_sweep_runs_only_the_missing_runs(tmp_path, capsys):
    scenario = tiny(tmp_path)
    out = tmp_path / "sweep"
    process = start(scenario, "--grid", "training.steps=[1500]", "--seeds", "0-5", "--workers", "1", "-o", out)
    wait_until(lambda: (out / "runs.csv").exists() and len(rows(out / "runs.csv")) >= 1, "first run")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, err
    done = {r["run"]: r for r in rows(out / "runs.csv")}
    assert 1 <= len(done) < 6 and all(r["status"] in ("ok", "expectation_failed") for r in done.values())
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(done)
    kept = {run: (out / "runs" / run / "trace.sqlite").stat().st_ino for run in done}
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"

    assert main(["sweep", str(scenario), "--grid", "training.steps=[1500]", "--seeds", "0-5", "--workers", "2",
                 "-o", str(out)]) in (0, 1)
    assert f"{len(done)} kept from before" in capsys.readouterr().out
    assert len(rows(out / "runs.csv")) == 6
    assert {run: (out / "runs" / run / "trace.sqlite").stat().st_ino for run in done} == kept

    # a changed scenario is a different run: nothing is kept; --force reruns everything
    main(["sweep", str(scenario), "--grid", "training.steps=[1500]", "--seeds", "0-5", "--workers", "2",
          "-o", str(out), "--force", "-q"])
    assert all((out / "runs" / run / "trace.sqlite").stat().st_ino != ino for run, ino in kept.items())


@pytest.mark.parametrize("argv, why", [
    (["--grid", "training.learnin_rate=[0.1]"], "training.learnin_rate: unknown key"),
    (["--grid", "training.learning_rate=[]"], "is empty"),
    (["--grid", "training.learning_rate=0.1"], "expected an array"),
    (["--grid", "training.learning_rate=[\"fast\", 0.1]"], "expected a positive number"),
    (["--grid", "network.layers=[[2, 2, 1], 3]"], "network.layers: expected an array"),
    (["--seeds", "0-x"], "not a seed"),
    (["--seeds", "99999999999999999999"], "out of range"),
    (["--seeds", "5-2"], "ends"),
])
def test_bad_grid_or_seeds_on_the_command_line_is_exit_2_with_nothing_started(tmp_path, capsys, argv, why):
    out = tmp_path / "sweep"
    assert main(["sweep", str(tiny(tmp_path)), "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("table, why", [
    ('[sweep]\nseeds = [0, 1]\n[sweep.grid]\n"training.learnin_rate" = [0.1]\n', "training.learnin_rate: unknown key"),
    ('[sweep]\nseeds = 0\n', "sweep.seeds: expected"),
    ('[sweep]\nseeds = [-1]\n', "sweep.seeds: entry [0]"),
    ('[sweep]\nseeds = [1, 1]\n', "given twice"),
    ('[sweep.grid]\ntraining.learning_rate = []\n', "is empty"),
    ('[sweep.grid]\ntraining.learning_rate = 0.5\n', "expected an array"),
    ('[sweep]\nruns = 3\n', "sweep.runs: unknown key"),
])
def test_a_bad_sweep_table_is_exit_2_with_nothing_started(tmp_path, capsys, table, why):
    out = tmp_path / "sweep"
    assert main(["sweep", str(tiny(tmp_path, "\n" + table)), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1, err
    assert not out.exists()


def test_the_sweep_table_gives_the_grid_and_the_flags_replace_it(tmp_path, capsys):
    scenario = tiny(tmp_path, '\n[sweep]\nseeds = 2\n[sweep.grid]\ntraining.steps = [4, 5]\n"script" = [[]]\n')
    out = tmp_path / "sweep"
    main(["sweep", str(scenario), "-o", str(out), "-q", "--workers", "1", "--grid", "training.steps=[6]"])
    assert [r["run"] for r in rows(out / "runs.csv")] == ["steps=6,script=,seed=0", "steps=6,script=,seed=1"]


def test_a_directory_that_is_not_a_sweeps_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["sweep", str(tiny(tmp_path)), "-o", str(out)]) == 2
    assert "not a simnet sweep's directory" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["notes.txt"]


def test_dask_without_the_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed: importing it fails
    out = tmp_path / "sweep"
    assert main(["sweep", str(tiny(tmp_path)), "--dask", "local", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'simnet[dask]'" in err and err.count("\n") == 1
    assert not out.exists()


def test_gifs_of_a_network_too_large_to_draw_are_refused_before_anything_starts(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", str(tiny(tmp_path)), "--grid", "network.layers=[[2, 2, 1], [2, 10000, 1]]", "--grid",
            "record.gifs=[[\"weights\"]]", "-o", str(out)]
    assert main(argv + ["--gifs"]) == 2
    err = capsys.readouterr().err
    assert "network.layers" in err and "layers=2-10000-1" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_run_that_fails_in_its_worker_is_an_error_row_with_one_line(tmp_path):
    from simnet.experiments.worker import run_task
    result = run_task({"run": "broken", "file": "broken.toml", "text": "[network]\nlayers = [2, 1]\n",
                       "overrides": [("seed", 0)]})
    assert result["row"]["status"] == "error" and "broken.toml" in result["row"]["error"]
    assert "\n" not in result["row"]["error"] and result["files"] == {}
