"""A trace is input like any other: a damaged or tampered file is a one-line TraceError, never a traceback."""
import math
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import simnet as sn
from simnet.cli import main
from simnet.trace.schema import LAYOUT
from simnet.trace.writer import BEAT
from test_trace import parameters

CODE = {(phase, kind): code for code, (phase, kind, _, _) in enumerate(LAYOUT, start=1)}
WEIGHT_UPDATE, STEP_BEGIN = CODE["update", "weight_update"], CODE["step", "step_begin"]
FIRST_BATCH = "(SELECT min(seq) FROM batches)"

# each a change no simnet run makes; applied with sqlite3 to a copy of a recorded trace
MUTATIONS = {
    "heartbeat of the wrong size": "UPDATE heartbeat SET beat = x'00'",
    "heartbeat that is not a time": f"UPDATE heartbeat SET beat = x'{BEAT.pack(math.nan, b'host').hex()}'",
    "two heartbeats": "INSERT INTO heartbeat SELECT beat FROM heartbeat",
    "every is not a number": "UPDATE meta SET value = '\"often\"' WHERE key = 'every'",
    "meta value is not JSON": "UPDATE meta SET value = '{\"loss\": ' WHERE key = 'config'",
    "meta value nested past the recursion limit": "UPDATE meta SET value = '{}' WHERE key = 'config';"
                                                  "UPDATE meta SET value = printf('%.*c', 100000, '[') "
                                                  "WHERE key = 'scenario_text'",
    "seed is text": "UPDATE meta SET value = '\"seven\"' WHERE key = 'seed'",
    "last_step is negative": "UPDATE meta SET value = '-5' WHERE key = 'last_step'",
    "runs are not steps": "UPDATE meta SET value = '[[\"a\", 1]]' WHERE key = 'runs'",
    "keyframe weight stored as text": "UPDATE keyframe_connections SET weight = 'heavy' WHERE position = 0",
    "keyframe names no neuron": "UPDATE keyframe_neurons SET neuron = 999 WHERE position = 0",
    "keyframe at a step never recorded": "UPDATE keyframes SET step = 1000000000000",
    "batch blob of 5 bytes": f"UPDATE batches SET v2 = x'0102030405' WHERE seq = {FIRST_BATCH}",
    "batch blob one value short": f"UPDATE batches SET v1 = substr(v1, 9) WHERE seq = {FIRST_BATCH}",
    "batch of a negative count": f"UPDATE batches SET last_seq = seq - 2 WHERE seq = {FIRST_BATCH}",
    "batch of a huge count": f"UPDATE batches SET last_seq = seq + 1000000000000 WHERE seq = {FIRST_BATCH}",
    "batch of an unknown kind": f"UPDATE batches SET kind = 99 WHERE seq = {FIRST_BATCH}",
    "batch names a missing subject list": "UPDATE batches SET subjects = 999",
    "subject id that names nothing": "UPDATE subject_lists SET subjects = x'e703000000000000' || substr(subjects, 9)",
    "subject list blob of wrong length": "UPDATE subject_lists SET subjects = x'010203'",
    "unknown kind code": "UPDATE events SET kind = 99 WHERE seq = (SELECT max(seq) FROM events WHERE step = 1)",
    "event subject that names nothing": "UPDATE events SET subject = 999 WHERE subject IS NOT NULL",
    "event value stored as text": "UPDATE events SET v1 = 'big' WHERE v1 IS NOT NULL",
    "batch size is infinite": f"UPDATE events SET v2 = 9e999 WHERE kind = {STEP_BEGIN}",
    "NULL last_seq": "UPDATE steps SET last_seq = NULL WHERE step = 3",
    "a step of 10^12": "UPDATE steps SET step = 1000000000000 WHERE step = (SELECT max(step) FROM steps)",
    "loss stored as text": "UPDATE steps SET loss = 'low' WHERE step = 2",
    "step range stored as text": "UPDATE steps SET first_seq = 'one' WHERE step = 2",
    "payload data not JSON": "UPDATE payloads SET data = '{' WHERE data IS NOT NULL",
    "payload data not an object": "UPDATE payloads SET data = '[1, 2]' WHERE data IS NOT NULL",
    "payload samples of wrong length": "UPDATE payloads SET samples = x'01020304' WHERE samples IS NOT NULL",
    "kind changed its subject": f"UPDATE kinds SET subject = 'planet' WHERE code = {WEIGHT_UPDATE}",
    "neuron name is a number": "UPDATE neurons SET name = 42 WHERE id = 3",
    "neuron whose activation is not a name": "UPDATE neurons SET activation = 'wob bly!' WHERE role = 'hidden'",
    "connection to a neuron that does not exist": "UPDATE connections SET target = 'ghost' WHERE id = 1",
    "missing steps table": "DROP TABLE steps",
    "missing keyframes table": "DROP TABLE keyframe_connections",
    "missing batches table": "DROP TABLE batches",
    "missing payloads table": "DROP TABLE payloads",
    "batches with wrong column types": "DROP TABLE batches; CREATE TABLE batches (seq, last_seq, step, kind, subjects,"
                                       " v1, v2, v3); INSERT INTO batches VALUES ('a', 'b', 1, 20, 1, 'x', 'y', 'z')",
}
HARMLESS = {
    "another description": "UPDATE meta SET value = '\"another run\"' WHERE key = 'scenario'",
    "vacuumed": "VACUUM",
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A short run recorded at detail "messages" (events, batches, payloads with samples), and its final network."""
    root = tmp_path_factory.mktemp("damage")
    scenario = root / "tiny.toml"
    scenario.write_text(textwrap.dedent("""
        name = "tiny"
        seed = 3
        [network]
        layers = [2, 3, 1]
        hidden = "tanh"
        output = "sigmoid"
        [data]
        kind = "xor"
        samples = 16
        [training]
        steps = 8
        learning_rate = 0.5
        loss = "bce"
        [record]
        every = 1
        detail = "messages"
    """))
    run = root / "run"
    assert main(["run", str(scenario), "-o", str(run), "-q", "--no-gif"]) == 0
    with sn.open_trace(run) as trace:
        assert trace.complete and trace.last_step == 8
        return run, parameters(trace.network_at(8))


def mutated(recorded, tmp_path, statements):
    run, _ = recorded
    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copy(run / "trace.sqlite", copy / "trace.sqlite")
    with sqlite3.connect(copy / "trace.sqlite") as db:
        db.executescript(statements)
    db.close()
    return copy


def reads(trace):
    """Every kind of read a user makes, each as a callable."""
    return [lambda: parameters(trace.network_at(trace.last_step)), lambda: list(trace.events()),
            lambda: trace.snapshot(trace.last_step), lambda: trace.history(), lambda: trace.event_counts(),
            lambda: list(trace.snapshots())]


@pytest.mark.parametrize("name", MUTATIONS)
def test_a_damaged_trace_is_a_one_line_trace_error(recorded, tmp_path, name):
    copy = mutated(recorded, tmp_path, MUTATIONS[name])
    errors = []
    try:
        with sn.open_trace(copy) as trace:
            for read in reads(trace):
                try:
                    read()
                except sn.TraceError as error:
                    errors.append(str(error))
    except sn.TraceError as error:
        errors.append(str(error))
    assert errors, "the damage went unnoticed"
    for message in errors:
        assert "\n" not in message and message.startswith(f"{copy / 'trace.sqlite'}: ")


@pytest.mark.parametrize("name", MUTATIONS)
def test_the_command_line_reports_a_damaged_trace_in_one_line(recorded, tmp_path, capsys, name):
    copy = mutated(recorded, tmp_path, MUTATIONS[name])
    commands = [["inspect", copy], ["inspect", copy, "--format", "jsonl"],
                ["export", copy, "--format", "gexf", "-o", tmp_path / "out.gexf"],
                ["replay", copy, "--gif", "sweep", "-q", "-o", tmp_path / "out.gif"]]
    codes = []
    for argv in commands:
        codes.append(main([str(a) for a in argv]))
        err = capsys.readouterr().err
        assert codes[-1] in (0, 2), argv
        if codes[-1] == 2:
            assert err.startswith("simnet: error: ") and err.count("\n") == 1 and "damaged trace" in err, err
    assert 2 in codes


@pytest.mark.parametrize("name", ["batch blob of 5 bytes", "every is not a number"])
def test_python_dash_m_simnet_ends_without_a_traceback(recorded, tmp_path, name):
    copy = mutated(recorded, tmp_path, MUTATIONS[name])
    for argv in (["inspect", copy, "--format", "csv"], ["export", copy, "--format", "jsonl", "-o", tmp_path / "x"]):
        done = subprocess.run([sys.executable, "-m", "simnet", *map(str, argv)], capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith("simnet: error: ") and done.stderr.count("\n") == 1


def plain_events(trace):
    return [{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in e.items()} for e in trace.events()]


@pytest.mark.parametrize("name", HARMLESS)
def test_a_harmless_change_reads_as_before(recorded, tmp_path, name):
    copy = mutated(recorded, tmp_path, HARMLESS[name])
    with sn.open_trace(recorded[0]) as original, sn.open_trace(copy) as trace:
        assert parameters(trace.network_at(8)) == recorded[1]
        assert plain_events(trace) == plain_events(original)
        for read in reads(trace):
            read()


@pytest.mark.parametrize("content, says", [
    (b"", "not a simnet trace (an empty file"),
    (b"SQLite format 3\x00" + bytes(84), "damaged trace"),
])
def test_a_file_cut_before_any_table_is_a_clear_error(tmp_path, content, says):
    trace_file = tmp_path / "trace.sqlite"
    trace_file.write_bytes(content)
    with pytest.raises(sn.TraceError) as failure:
        sn.open_trace(tmp_path)
    assert str(failure.value).startswith(f"{trace_file}: ") and says in str(failure.value)
    assert "\n" not in str(failure.value)


def test_a_database_without_tables_is_not_a_trace_yet(tmp_path):
    with sqlite3.connect(tmp_path / "trace.sqlite") as db:  # as a run killed before its schema commit leaves it
        db.execute("PRAGMA journal_mode = WAL")
    with pytest.raises(sn.TraceError, match="not a simnet trace yet .*without tables"):
        sn.open_trace(tmp_path)
