"""Every step of an "updates" trace has its sweep, equal to the one a "messages" trace of the same run recorded."""
from pathlib import Path

import pytest

import simnet as sn
from simnet.scenario import execute, loads
from simnet.viz.message_sweep import read_sweep

XOR = Path(__file__).resolve().parent.parent / "scenarios" / "xor.toml"


def traces(tmp_path, extra):
    text = XOR.read_text().replace("steps = 1000", "steps = 30").replace("samples = 200", "samples = 40")
    text = text.replace('loss = "bce"', 'loss = "bce"\n' + extra)
    for detail in ("updates", "messages"):
        recorder = sn.Recorder(tmp_path / detail, every=10, detail=detail, scenario_text=text)
        execute(loads(text, "xor.toml"), recorder=recorder)
        recorder.close()
    return sn.open_trace(tmp_path / "updates"), sn.open_trace(tmp_path / "messages")


@pytest.mark.parametrize("extra", ["", 'batch_size = 7\noptimizer = "adam"\nl2 = 0.01'])
def test_the_sweep_of_a_step_between_snapshots_is_the_recorded_one(tmp_path, extra):
    updates, messages = traces(tmp_path, extra)
    with updates, messages:
        for step in (1, 7, 13, 29):  # none of them a snapshot step
            assert step not in updates.steps
            again, recorded = read_sweep(updates, step), read_sweep(messages, step)
            assert (again.origin, recorded.origin) == ("recomputed", "messages")
            assert again.forward == recorded.forward and again.backward == recorded.backward
            assert again.sent == recorded.sent and again.sent_back == recorded.sent_back
            assert again.delta == recorded.delta and again.loss == recorded.loss
