"""`simnet play`: a live session steered through its HTTP API, saved as a scenario, and run again with
`simnet run`: the two traces hold the same events and end with the same weights, bit for bit."""
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from serving_helpers import ROOT, Server, until
from simnet.errors import ScenarioError
from simnet.serving.session import PlaySession
from simnet.trace import open_trace


def events_of(trace):
    """Every event of the trace, from the run's beginning to its end, with its step and every number."""
    assert trace.end_reason == "complete"
    return list(trace.events())


def final_network(trace):
    G = trace.snapshot(trace.last_step)
    return ({n: (a["role"], a["fn"], a["bias"]) for n, a in G.nodes(data=True)},
            {(s, t): (a["weight"], a["frozen"]) for s, t, a in G.edges(data=True)})


def network_of(answer):
    return ({n["name"]: (n["role"], n["activation"], n["bias"]) for n in answer["neurons"]},
            {(c["source"], c["target"]): (c["weight"], c["frozen"]) for c in answer["connections"]})


def run_saved(text, tmp_path):
    """`simnet run` of the scenario `text` (placed where the original scenario lives, for its relative paths)."""
    saved = ROOT / "scenarios" / f".saved-{os.getpid()}-{tmp_path.name}.toml"
    saved.write_text(text)
    try:
        done = subprocess.run([sys.executable, "-m", "simnet", "run", saved, "-o", tmp_path / "again", "--no-gif",
                               "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        saved.unlink()
    assert done.returncode == 0, done.stderr
    return tmp_path / "again"


def test_a_session_steered_through_the_api_is_repeated_bit_for_bit_by_its_saved_scenario(tmp_path):
    with Server("play", "scenarios/moons.toml", "-o", tmp_path / "session") as server:
        assert server.post("/api/session/run", {"steps": 15})[0] == 200
        until(lambda: (lambda state: state["step"] == 15 and not state["running"])(server.get("/api/session/state")),
              "15 steps")
        before = server.get("/api/session/network")
        hidden = [n["name"] for n in before["neurons"] if n["role"] == "hidden"]
        inputs = [n["name"] for n in before["neurons"] if n["role"] == "input"]
        output = [n["name"] for n in before["neurons"] if n["role"] == "output"][0]
        first = before["connections"][0]
        taken = [
            {"action": "add_neuron", "name": "extra", "activation": "tanh", "connect_from": inputs,
             "connect_to": [output]},
            {"action": "set_learning_rate", "value": 0.05},
            {"action": "set_weight", "from": first["source"], "to": first["target"], "weight": -0.3125},
            {"action": "set_bias", "name": hidden[0], "bias": 0.1},
            {"action": "freeze", "from": first["source"], "to": first["target"]},
            {"action": "perturb", "noise": 0.05},
        ]
        for entry in taken:
            status, answer = server.post("/api/session/action", entry)
            assert status == 200, answer
            assert answer["step"] == 16
        # bad actions: a 400 with the one-line reason, and the network as it was
        unchanged = server.get("/api/session/network")
        for entry, reason in [({"action": "connect", "from": output, "to": inputs[0]}, "input"),
                              ({"action": "connect", "from": "nobody", "to": output}, "nobody"),
                              ({"action": "set_learning_rate", "value": "fast"}, "value"),
                              ({"action": "add_neuron", "name": "extra2", "connect_from": [hidden[-1]],
                                "connect_to": [hidden[1]]}, "cycle"),
                              ({"action": "teleport"}, "action")]:
            status, answer = server.post("/api/session/action", entry)
            assert status == 400 and reason in answer["error"] and "\n" not in answer["error"], (entry, answer)
        assert server.get("/api/session/network") == unchanged
        # another site's page can only send a form or plain text, never JSON without asking first
        request = urllib.request.Request(server.url + "api/session/action", method="POST",
                                         data=b'{"action": "set_learning_rate", "value": 9}',
                                         headers={"content-type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 415
        assert server.get("/api/session/network") == unchanged
        # actions while it trains: they take effect at whatever step boundary comes next
        server.post("/api/session/run", {"steps": None})
        until(lambda: server.get("/api/session/state")["step"] >= 30, "training to go on")
        status, answer = server.post("/api/session/action", {"action": "remove_neuron", "name": hidden[2]})
        assert status == 200 and answer["step"] > 30
        status, answer = server.post("/api/session/action", {"action": "disconnect", "from": inputs[0],
                                                             "to": "extra"})
        assert status == 200
        state = server.post("/api/session/pause")[1]
        assert not state["running"]
        server.post("/api/session/run", {"steps": 7})
        until(lambda: not server.get("/api/session/state")["running"], "the 7 steps")
        end = server.get("/api/session/state")
        network = server.get("/api/session/network")
        assert network["step"] == end["step"]
        text = server.get("/api/session/scenario")
    assert f"steps = {end['step']}" in text and text.count("[[script]]") == 8
    again = run_saved(text, tmp_path)
    with open_trace(tmp_path / "session") as session, open_trace(again) as rerun:
        assert session.last_step == rerun.last_step == end["step"]
        assert events_of(session) == events_of(rerun)
        assert final_network(session) == final_network(rerun) == network_of(network)
        assert [a["label"] for a in session.actions()] == [a["label"] for a in rerun.actions()]


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_a_session_and_its_saved_scenario_give_the_same_events_on_either_engine(tmp_path, engine):
    session = PlaySession(ROOT / "scenarios" / "xor.toml", tmp_path / "session", engine=engine)
    try:
        session.run(5, wait=True)
        session.act({"action": "add_neuron", "name": "n", "activation": "sigmoid", "connect_from": ["x0", "x1"],
                     "connect_to": ["y0"], "weight": 0.25})
        session.act({"action": "perturb", "noise": 0.1, "neurons": ["y0"]})
        session.run(40, speed=None)
        until(lambda: session.state()["step"] >= 20, "steps")  # whatever step it has got to
        session.act({"action": "set_learning_rate", "value": 0.3})
        session.pause()
        text = session.scenario_text()
        network = session.network()
    finally:
        session.close()
    assert f"steps = {network['step']}" in text
    with open_trace(tmp_path / "session") as recorded, open_trace(run_saved(text, tmp_path)) as rerun:
        assert events_of(recorded) == events_of(rerun)
        assert final_network(recorded) == final_network(rerun) == network_of(network)


def test_a_bad_action_leaves_the_session_as_it_was_and_saving_before_any_step_is_refused(tmp_path):
    session = PlaySession(ROOT / "scenarios" / "xor.toml", tmp_path / "session")
    try:
        with pytest.raises(ScenarioError, match="no step trained yet"):
            session.scenario_text()
        before = session.network()
        with pytest.raises(ScenarioError, match=r"script\[0\]\.connect_to\[0\]: unknown neuron 'nowhere'"):
            # the neuron would be added before its second connection fails: nothing of it may stay
            session.act({"action": "add_neuron", "name": "half", "connect_from": ["x0"], "connect_to": ["nowhere"]})
        with pytest.raises(ScenarioError, match="script.0..at"):
            session.act({"action": "set_learning_rate", "value": 1.0, "at": 3})
        assert session.network() == before and session.actions == []
        session.run(3, wait=True)
        def recorded():  # a paused session's trace gets every step so far (its writer commits them)
            with open_trace(tmp_path / "session") as trace:
                return trace.last_step == 3 and trace.running
        until(recorded, "the steps to be committed")
    finally:
        session.close()
    with open_trace(tmp_path / "session") as trace:
        assert trace.last_step == 3 and trace.actions() == [] and "half" not in trace.snapshot(3)


def test_a_session_stopped_before_the_scenarios_own_script_saves_without_it(tmp_path):
    session = PlaySession(ROOT / "scenarios" / "growing.toml", tmp_path / "session")
    try:
        session.run(12, wait=True)
        session.act({"action": "set_bias", "name": "h1_0", "bias": 0.5})
        session.run(3, wait=True)
        text = session.scenario_text()
        network = session.network()
    finally:
        session.close()
    assert "at = 301" not in text and "[expect" not in text and text.count("[[script]]") == 1
    with open_trace(tmp_path / "session") as recorded, open_trace(run_saved(text, tmp_path)) as rerun:
        assert events_of(recorded) == events_of(rerun)
        assert final_network(recorded) == final_network(rerun) == network_of(network)


def random_entry(rng, network, count):
    """A script entry drawn at random for `network` (as the session API gives it); some cannot be done."""
    names = [n["name"] for n in network["neurons"]]
    hidden = [n["name"] for n in network["neurons"] if n["role"] == "hidden"]
    edges = [(c["source"], c["target"]) for c in network["connections"]]
    source, target = edges[rng.integers(len(edges))]
    kind = rng.choice(["set_learning_rate", "add_neuron", "remove_neuron", "connect", "disconnect", "set_weight",
                       "set_bias", "freeze", "unfreeze", "perturb"])
    if kind == "set_learning_rate":
        return {"action": kind, "value": float(rng.uniform(0.01, 1.0))}
    if kind == "add_neuron":
        return {"action": kind, "name": f"r{count}", "activation": str(rng.choice(["relu", "tanh", "sigmoid"])),
                "connect_from": ["x0", "x1"][:rng.integers(1, 3)], "connect_to": ["y0"]}
    if kind == "remove_neuron":
        return {"action": kind, "name": str(rng.choice(hidden))}
    if kind == "connect":
        return {"action": kind, "from": str(rng.choice(names)), "to": str(rng.choice(names)),
                "weight": float(rng.normal())}
    if kind == "set_weight":
        return {"action": kind, "from": source, "to": target, "weight": float(rng.normal())}
    if kind == "set_bias":
        return {"action": kind, "name": str(rng.choice(names)), "bias": float(rng.normal())}
    if kind == "perturb":
        return {"action": kind, "noise": float(rng.uniform(0.01, 0.5))}
    return {"action": kind, "from": source, "to": target}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sessions_are_repeated_bit_for_bit(tmp_path, seed):
    """Sessions of random actions (some refused) between runs of random lengths, some stopped by a pause
    wherever training has got to: every one is repeated by its saved scenario."""
    import numpy as np
    rng = np.random.default_rng(seed)
    session = PlaySession(ROOT / "scenarios" / "xor.toml", tmp_path / "session",
                          engine=["actor", "fast"][seed % 2])
    try:
        for count in range(12):
            if rng.random() < 0.3:
                session.run(None)
                until(lambda: session.state()["step"] > 0, "a step")
                session.pause()
            else:
                session.run(int(rng.integers(1, 6)), wait=True)
            for _ in range(int(rng.integers(0, 3))):
                try:
                    session.act(random_entry(rng, session.network(), count))
                except ScenarioError:
                    pass  # refused, and the session goes on as it was
        session.run(1, wait=True)
        text = session.scenario_text()
        network = session.network()
    finally:
        session.close()
    assert len(session.actions) >= 5
    with open_trace(tmp_path / "session") as recorded, open_trace(run_saved(text, tmp_path)) as rerun:
        assert events_of(recorded) == events_of(rerun)
        assert final_network(recorded) == final_network(rerun) == network_of(network)


def test_actions_after_the_last_step_are_saved_to_act_on_the_network_the_run_ends_with(tmp_path):
    session = PlaySession(ROOT / "scenarios" / "xor.toml", tmp_path / "session", engine="fast")
    try:
        session.run(6, wait=True)
        session.act({"action": "add_neuron", "name": "late", "activation": "tanh", "connect_from": ["x0"],
                     "connect_to": ["y0"], "weight": 0.5})
        session.act({"action": "set_bias", "name": "y0", "bias": -0.25})
        text = session.scenario_text()
        network = session.network()
    finally:
        session.close()
    assert "steps = 6" in text and text.count("at = 7") == 2
    assert "late" in {n["name"] for n in network["neurons"]}
    with open_trace(tmp_path / "session") as recorded, open_trace(run_saved(text, tmp_path)) as rerun:
        assert recorded.last_step == rerun.last_step == 6
        assert events_of(recorded) == events_of(rerun)
        assert final_network(recorded) == final_network(rerun) == network_of(network)


def test_a_session_records_what_a_run_of_its_scenario_records_of_its_data(tmp_path):
    session = PlaySession(ROOT / "scenarios" / "iris.toml", tmp_path / "session")
    try:
        session.run(2, wait=True)
    finally:
        session.close()
    from simnet.runner import run
    run(ROOT / "scenarios" / "iris.toml", tmp_path / "run", steps=2, gifs=False)
    with open_trace(tmp_path / "session") as recorded, open_trace(tmp_path / "run") as ran:
        assert "standardize" in ran.metadata
        for key in ("scenario", "description", "scenario_path", "standardize"):
            assert recorded.metadata.get(key) == ran.metadata.get(key), key
