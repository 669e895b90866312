"""`simnet serve` as a real server over a directory where a real `simnet run` trains: the API follows the
run step by step to its end, a run killed with SIGKILL shows as incomplete, nothing outside the directory is
served, and the server listens on this machine only unless told otherwise."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from serving_helpers import ROOT, Server, listening_address, simnet_running, until
from simnet.errors import InputError
from simnet.runner import run
from simnet.serving.runs import resolve_under
from simnet.trace import open_trace

def run_named(server, name):
    return {r["name"]: r for r in server.get("/api/runs")}.get(name)


def test_a_run_training_into_the_directory_is_followed_to_its_end(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    with Server("serve", runs) as server:
        assert server.get("/api/runs") == []
        with simnet_running("run", "scenarios/xor.toml", "--steps", 3000, "--no-gif", "-q",
                            "-o", runs / "live") as training:
            until(lambda: (run_named(server, "live") or {}).get("status") == "running", "the run to show as running")
            page = server.get("/runs/live/")
            assert "simnet live" in page  # a running run's page follows it
            got, after, status, part_way = [], -1, "running", 0
            while status == "running":
                answer = server.get(f"/api/runs/live/steps?after={after}")
                steps = [s["step"] for s in answer["steps"]]
                part_way += bool(steps) and answer["status"] == "running"
                assert steps == list(range(after + 1 if after >= 0 else 1, (steps or [after])[-1] + 1))
                got += answer["steps"]
                after = steps[-1] if steps else after
                status = answer["status"]
            assert training.wait(300) == 0
            answer = server.get(f"/api/runs/live/steps?after={after}")
            got += answer["steps"]
            assert answer["status"] == "complete"
            assert len({s["step"] for s in got}) == len(got) == 3000 and got[-1]["step"] == 3000
            assert part_way >= 2  # steps arrived while it ran, more than once
        with open_trace(runs / "live") as trace:
            history = trace.history()
        assert [s["loss"] for s in got] == history["loss"].tolist()  # the trace's own floats
        info = run_named(server, "live")
        assert info["status"] == "complete" and info["last_step"] == 3000
        assert "simnet replay" in server.get("/runs/live/")  # a finished run's page is its replay page
        assert 'href="/runs/live/"' in server.get("/")


def test_a_run_killed_with_sigkill_shows_as_incomplete(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    with simnet_running("run", "scenarios/xor.toml", "--steps", 10**6, "--no-gif", "-q",
                        "-o", runs / "doomed") as training:
        with Server("serve", runs) as server:
            until(lambda: (run_named(server, "doomed") or {}).get("last_step"), "steps to be committed")
            assert run_named(server, "doomed")["status"] == "running"
            os.kill(training.pid, signal.SIGKILL)
            training.wait()
            info = until(lambda: (r := run_named(server, "doomed"))["status"] != "running" and r, "the death to show")
            assert info["status"] == "incomplete" and info["last_step"] > 0
            assert server.get("/api/runs/doomed/steps?after=0")["status"] == "incomplete"
            assert "incomplete" in server.get("/")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A served directory with one finished run, a file and a link pointing outside, a run whose name is HTML,
    and a sweep's runs.csv."""
    base = tmp_path_factory.mktemp("served")
    runs = base / "runs"
    run(ROOT / "scenarios" / "xor.toml", runs / "xor", steps=30, gifs=False)
    (base / "secret.txt").write_text("outside")
    os.symlink(base / "secret.txt", runs / "link.txt")
    os.symlink(base, runs / "up")
    shutil.copytree(runs / "xor", runs / "<img src=x onerror=alert(1)>")
    (runs / "sweep").mkdir()
    shutil.copytree(runs / "xor", runs / "sweep" / "lr_0.5")
    (runs / "sweep" / "runs.csv").write_text("run,learning_rate,loss\nlr_0.5,0.5,0.25\n")
    with Server("serve", runs) as server:
        yield server, runs


@pytest.mark.parametrize("path", [
    "/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/..%2fsecret.txt", "/files//etc/passwd",
    "/files/%2fetc%2fpasswd", "/files/link.txt", "/files/up/secret.txt", "/files/xor/../../secret.txt",
    "/api/runs/..%2f..%2fsecret/steps", "/runs/up/", "/files/.%2e/secret.txt",
])
def test_nothing_outside_the_directory_is_served(served, path):
    server, _ = served
    status, body = server.status(path)
    assert status in (400, 404) and b"outside" not in body and b"root:" not in body


def test_files_inside_the_directory_are_served(served):
    server, runs = served
    status, body = server.status("/files/xor/summary.json")
    assert status == 200 and body == (runs / "xor" / "summary.json").read_bytes()


def test_resolve_under_refuses_what_leads_out(tmp_path):
    (tmp_path / "a").mkdir()
    os.symlink("/", tmp_path / "a" / "root")
    for name in ("../x", "/etc/passwd", "a/../../x", "a/root/etc", "a//b", ".hidden", "a\\..\\x"):
        with pytest.raises(InputError):
            resolve_under(tmp_path, name)
    assert resolve_under(tmp_path, "a") == tmp_path / "a"


def test_names_from_runs_are_escaped_and_sweeps_listed(served):
    server, _ = served
    index = server.get("/")
    assert "<img src=x" not in index and "&lt;img src=x onerror=alert(1)&gt;" in index
    assert "<h3>sweep</h3>" in index and 'href="/runs/sweep/lr_0.5/"' in index
    names = {r["name"]: r for r in server.get("/api/runs")}
    assert names["<img src=x onerror=alert(1)>"]["status"] == "complete"
    assert "link.txt" not in names and not any(n.startswith("up") for n in names)
    assert server.get("/api/sweeps")[0]["rows"] == [["lr_0.5", "0.5", "0.25"]]


def test_it_listens_on_this_machine_only_unless_told(tmp_path):
    with Server("serve", tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        assert listening_address(port) == "127.0.0.1"
    with Server("serve", tmp_path, "--host", "0.0.0.0") as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        assert listening_address(port) == "0.0.0.0"
        assert "listening on 0.0.0.0" in server.process.stderr.readline()


def test_without_the_serve_extra_the_command_says_what_to_install(tmp_path):
    (tmp_path / "starlette.py").write_text("raise ImportError('no starlette here')\n")
    for command in (["serve", tmp_path], ["play", "scenarios/xor.toml"]):
        done = subprocess.run([sys.executable, "-m", "simnet", *map(str, command), "--no-browser"], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                              timeout=60)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "simnet[serve]" in done.stderr


def test_an_address_in_use_is_one_line_and_leaves_nothing_behind(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["serve", tmp_path], ["play", "scenarios/xor.toml", "-o", tmp_path / "session"]):
            done = subprocess.run([sys.executable, "-m", "simnet", *map(str, command), "--port", str(port),
                                   "--no-browser"], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert done.returncode == 2 and done.stderr == \
                f"simnet: error: 127.0.0.1:{port}: --port: cannot listen there: Address already in use\n"
    assert not (tmp_path / "session").exists()


def test_a_local_server_answers_only_to_this_machines_names(served):
    import http.client
    server, _ = served
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    for host, status in (("127.0.0.1", 200), ("localhost", 200), ("evil.example", 400)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/api/runs", headers={"Host": f"{host}:{port}"})
        assert connection.getresponse().status == status, host
        connection.close()
