"""The trace store: a run recorded into SQLite, read back and replayed bit for bit.

:class:`Recorder` subscribes to a network's bus and streams the run into
``DIR/trace.sqlite``; :func:`open_trace` opens it read-only as a
:class:`Trace`, which answers "what happened at step 412 in neuron h2" and
rebuilds the network as it was after any step.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`, ``application_id`` =
:data:`APPLICATION_ID`):

``meta(key, value)``
    run metadata, each value JSON: version, schema, start_time, end_time,
    detail, every, keyframe_every, seed, config (what run_begin said),
    scenario_text, runs ([first, last] step of each run), end_reason,
    last_step, and whatever the caller added.  The times are UTC, or
    ``SOURCE_DATE_EPOCH`` when that is set, so that the same run can give
    the same file.
``kinds(code, phase, kind, subject, v1, v2, v3)``
    one row per event kind; ``subject`` says whether ``events.subject`` is a
    neuron or a connection id, ``v1..v3`` name what the value columns hold.
``neurons(id, name, role, activation, added_step, removed_step)`` and
``connections(id, source_id, target_id, source, target, added_step, removed_step)``
    the topology over time: a neuron or connection exists in the network
    after step s when ``added_step <= s`` and ``removed_step`` is null or > s.
``events(seq, step, kind, subject, v1, v2, v3)``
    one row per event, ``seq`` as emitted; fire and message rows hold batch
    means (fire forward: z, a; backward: dL_da, dL_dz; message: value).
``batches(seq, last_seq, step, kind, subjects, v1, v2, v3)``
    many events of one kind emitted together (an engine's whole update or
    firing phase), one row for all of them: the events ``seq..last_seq`` in
    order, ``subjects`` the ``subject_lists`` row naming their neurons or
    connections, ``v1..v3`` their values as ``events`` would hold them, each a
    blob of float64, little endian, one per event.
``subject_lists(id, subjects)``
    the neuron or connection ids of a batch's events, int64 little endian;
    batches about the same subjects (every step's) share one.
``payloads(seq, data, samples)``
    what does not fit in three numbers: ``data`` JSON (run_begin config,
    scripted actions, run_end reason), ``samples`` the per-sample vectors of
    a fire or message event (float64, little endian, the kind's fields one
    after the other).
``steps(step, first_seq, last_seq, lr, batch_size, loss, accuracy, done)``
    one row per step: the range of its events and its loss.
``keyframes(step, seq, lr)``, ``keyframe_neurons(step, position, neuron, bias)``,
``keyframe_connections(step, position, connection, weight, frozen)``
    the full state after every ``keyframe_every``-th step and at the start
    of each run, so that replaying any step reads a bounded number of events.
Views with named columns, in seq order, showing batched events one per row
like the others (taken apart in SQL, which needs SQLite's ``pow``):
``event_log``, ``weight_updates``, ``bias_updates``, ``firings``,
``messages``; ``event_rows`` is ``events`` and the expanded ``batches`` as one.

Writes stream: rows are buffered and committed with their steps, up to
:data:`FLUSH_STEPS` steps per transaction (fewer when their values pass
:data:`FLUSH_BYTES`), in WAL mode, by a writer process (:mod:`simnet.trace.writer`),
so that SQLite works on another core while the run goes on; a run killed at
any moment leaves every committed step readable.  The same run writes the
same file, byte for byte, but for its start and end times (unless
``SOURCE_DATE_EPOCH`` fixes them): nothing else depends on the clock.
Values are stored in untyped columns so floats come back bit for bit (-0.0
included).
"""
import bisect
import heapq
import json
import math
import os
import sqlite3
from datetime import datetime, timezone
from itertools import groupby, repeat
from operator import itemgetter
from pathlib import Path

import numpy as np

from ..errors import SimnetError, TraceError, positive_int
from ..core.events import KINDS, Event
from ..core.functions import ACTIVATIONS
from ..core.graph import ROLES
from .snapshot import SNAPSHOT_KINDS, NetworkState, SnapshotBuilder, StepData, batch_means, mean_rows
from ..files import directory_locked, lock_directory
from .writer import WriterError, WriterProcess

SCHEMA_VERSION = 2
APPLICATION_ID = 0x736E6574  # "snet"
FILENAME = "trace.sqlite"
DETAILS = ("updates", "messages")
KEYFRAME_EVERY = 100
SAMPLE_LIMIT = 64        # "messages" keeps per-sample vectors for batches up to this size
# commit at the end of a step once this many rows (or batches), steps or bytes of values wait: never by
# the clock, since SQLite lays out its pages by transaction and the same run must give the same file.
# The bytes bound what a large network holds: its updates take megabytes per step.
FLUSH_ROWS = 20_000
FLUSH_STEPS = 100
FLUSH_BYTES = 8 << 20

# (phase, kind, subject, names of v1..v3); a kind's code is its position + 1
LAYOUT = (
    ("init", "run_begin", None, ("lr",)),
    ("init", "neuron_added", "neuron", ("bias",)),
    ("init", "connection_added", "connection", ("weight", "frozen")),
    ("script", "action", None, ()),
    ("script", "neuron_added", "neuron", ("bias",)),
    ("script", "neuron_removed", "neuron", ()),
    ("script", "connection_added", "connection", ("weight", "frozen")),
    ("script", "connection_removed", "connection", ("weight",)),
    ("script", "weight_set", "connection", ("old", "new")),
    ("script", "bias_set", "neuron", ("old", "new")),
    ("script", "frozen", "connection", ()),
    ("script", "unfrozen", "connection", ()),
    ("script", "learning_rate_set", None, ("old", "new")),
    ("step", "step_begin", None, ("lr", "batch_size")),
    ("forward", "fire", "neuron", ("z", "a")),
    ("forward", "message", "connection", ("value",)),
    ("loss", "loss", None, ("loss", "accuracy")),
    ("backward", "fire", "neuron", ("dL_da", "dL_dz")),
    ("backward", "message", "connection", ("value",)),
    ("update", "weight_update", "connection", ("old", "new", "grad")),
    ("update", "bias_update", "neuron", ("old", "new", "grad")),
    ("step", "step_end", None, ("loss", "accuracy")),
    ("end", "run_end", None, ("steps",)),
)
UNUSED = [(None,) * (3 - n) for n in range(4)]  # the value columns a kind with n fields leaves empty
# events that change weights, biases or topology: what replay reads
STATE_KINDS = frozenset({
    "neuron_added", "neuron_removed", "connection_added", "connection_removed", "weight_set",
    "bias_set", "frozen", "unfrozen", "learning_rate_set", "weight_update", "bias_update",
})


# Plain SQL has no way to read a number out of a blob, so the views that show
# batched events take each 8-byte slice apart from its hex text.
HEX_DIGITS = "'0123456789ABCDEF'"


def _sql_byte(h, k):
    """SQL: byte `k` of the hex text `h`, as an integer."""
    return (f"((instr({HEX_DIGITS}, substr({h}, {2 * k + 1}, 1)) - 1) * 16"
            f" + instr({HEX_DIGITS}, substr({h}, {2 * k + 2}, 1)) - 1)")


def _sql_sum_of_bytes(h, count):
    return " + ".join(f"{_sql_byte(h, k)} * {256 ** k}" for k in range(count))


def _sql_int64(h):
    """SQL: the non-negative little-endian int64 whose hex text is `h`."""
    return _sql_sum_of_bytes(h, 8)


def _sql_float64(h):
    """SQL: the little-endian float64 whose hex text is `h`, exactly (NaN as NULL, as SQLite stores it)."""
    sign = f"(CASE WHEN {_sql_byte(h, 7)} >= 128 THEN -1.0 ELSE 1.0 END)"
    exponent = f"(({_sql_byte(h, 7)} % 128) * 16 + {_sql_byte(h, 6)} / 16)"
    mantissa = f"(({_sql_byte(h, 6)} % 16) * {2 ** 48} + {_sql_sum_of_bytes(h, 6)})"
    return (f"CASE WHEN {h} IS NULL THEN NULL"
            f" WHEN {exponent} = 2047 THEN CASE WHEN {mantissa} = 0 THEN {sign} * 9e999 END"
            f" WHEN {exponent} = 0 THEN {sign} * {mantissa} * pow(2.0, -1074)"
            f" ELSE {sign} * ({2 ** 52} + {mantissa}) * pow(2.0, {exponent} - 1075) END")


def _slice(blob):
    return f"nullif(hex(substr({blob}, 8 * p.i + 1, 8)), '')"


BATCH_EVENTS_VIEW = f"""
CREATE VIEW batch_events AS
    WITH RECURSIVE positions(seq, i, last) AS (
        SELECT seq, 0, last_seq - seq FROM batches
        UNION ALL SELECT seq, i + 1, last FROM positions WHERE i < last),
    sliced AS (
        SELECT b.seq + p.i AS seq, b.step, b.kind, {_slice("s.subjects")} AS hs,
               {_slice("b.v1")} AS h1, {_slice("b.v2")} AS h2, {_slice("b.v3")} AS h3
        FROM positions p JOIN batches b ON b.seq = p.seq JOIN subject_lists s ON s.id = b.subjects)
    SELECT seq, step, kind, {_sql_int64("hs")} AS subject,
           {_sql_float64("h1")} AS v1, {_sql_float64("h2")} AS v2, {_sql_float64("h3")} AS v3
    FROM sliced;
"""

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE kinds (code INTEGER PRIMARY KEY, phase TEXT, kind TEXT, subject TEXT, v1 TEXT, v2 TEXT, v3 TEXT);
CREATE TABLE neurons (id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT, activation TEXT,
                      added_step INTEGER, removed_step INTEGER);
CREATE TABLE connections (id INTEGER PRIMARY KEY, source_id INTEGER, target_id INTEGER,
                          source TEXT NOT NULL, target TEXT NOT NULL, added_step INTEGER, removed_step INTEGER);
CREATE TABLE events (seq INTEGER PRIMARY KEY, step INTEGER NOT NULL, kind INTEGER NOT NULL, subject INTEGER,
                     v1, v2, v3);
CREATE TABLE batches (seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, step INTEGER NOT NULL,
                      kind INTEGER NOT NULL, subjects INTEGER NOT NULL, v1 BLOB, v2 BLOB, v3 BLOB);
CREATE TABLE subject_lists (id INTEGER PRIMARY KEY, subjects BLOB NOT NULL);
CREATE TABLE payloads (seq INTEGER PRIMARY KEY, data TEXT, samples BLOB);
CREATE TABLE steps (step INTEGER PRIMARY KEY, first_seq INTEGER, last_seq INTEGER, lr, batch_size,
                    loss, accuracy, done INTEGER);
CREATE TABLE keyframes (step INTEGER PRIMARY KEY, seq INTEGER NOT NULL, lr);
CREATE TABLE keyframe_neurons (step INTEGER, position INTEGER, neuron INTEGER, bias,
                               PRIMARY KEY (step, position)) WITHOUT ROWID;
CREATE TABLE keyframe_connections (step INTEGER, position INTEGER, connection INTEGER, weight, frozen INTEGER,
                                   PRIMARY KEY (step, position)) WITHOUT ROWID;
""" + BATCH_EVENTS_VIEW + """
CREATE VIEW event_rows AS
    SELECT seq, step, kind, subject, v1, v2, v3 FROM events
    UNION ALL SELECT seq, step, kind, subject, v1, v2, v3 FROM batch_events;
CREATE VIEW event_log AS
    SELECT e.seq, e.step, k.phase, k.kind,
           CASE k.subject WHEN 'neuron' THEN n.name END AS neuron, c.source, c.target,
           e.v1, e.v2, e.v3, p.data
    FROM event_rows e JOIN kinds k ON k.code = e.kind
    LEFT JOIN neurons n ON k.subject = 'neuron' AND n.id = e.subject
    LEFT JOIN connections c ON k.subject = 'connection' AND c.id = e.subject
    LEFT JOIN payloads p ON p.seq = e.seq
    ORDER BY e.seq;
CREATE VIEW weight_updates AS
    SELECT e.step, e.seq, c.source, c.target, e.v1 AS old, e.v2 AS new, e.v2 - e.v1 AS delta, e.v3 AS grad
    FROM event_rows e JOIN kinds k ON k.code = e.kind AND k.kind = 'weight_update'
    JOIN connections c ON c.id = e.subject
    ORDER BY e.seq;
CREATE VIEW bias_updates AS
    SELECT e.step, e.seq, n.name AS neuron, e.v1 AS old, e.v2 AS new, e.v2 - e.v1 AS delta, e.v3 AS grad
    FROM event_rows e JOIN kinds k ON k.code = e.kind AND k.kind = 'bias_update'
    JOIN neurons n ON n.id = e.subject
    ORDER BY e.seq;
CREATE VIEW firings AS
    SELECT e.step, e.seq, k.phase, n.name AS neuron,
           CASE k.phase WHEN 'forward' THEN e.v1 END AS z, CASE k.phase WHEN 'forward' THEN e.v2 END AS a,
           CASE k.phase WHEN 'backward' THEN e.v1 END AS dL_da,
           CASE k.phase WHEN 'backward' THEN e.v2 END AS dL_dz
    FROM event_rows e JOIN kinds k ON k.code = e.kind AND k.kind = 'fire'
    JOIN neurons n ON n.id = e.subject
    ORDER BY e.seq;
CREATE VIEW messages AS
    SELECT e.step, e.seq, k.phase, c.source, c.target, e.v1 AS value
    FROM event_rows e JOIN kinds k ON k.code = e.kind AND k.kind = 'message'
    JOIN connections c ON c.id = e.subject
    ORDER BY e.seq;
"""

STEP_UPSERT = """
INSERT INTO steps (step, first_seq, last_seq, lr, batch_size, loss, accuracy, done) VALUES (?,?,?,?,?,?,?,?)
ON CONFLICT (step) DO UPDATE SET
    first_seq = min(first_seq, excluded.first_seq), last_seq = max(last_seq, excluded.last_seq),
    lr = coalesce(excluded.lr, lr), batch_size = coalesce(excluded.batch_size, batch_size),
    loss = coalesce(excluded.loss, loss), accuracy = coalesce(excluded.accuracy, accuracy),
    done = max(done, excluded.done)
"""


def kinds_for(detail):
    """The event kinds a Recorder at `detail` listens to (None: all of them)."""
    return None if detail == "messages" else frozenset(KINDS) - {"message"}


def _json(value):
    return json.dumps(value, default=_plain, allow_nan=True)


def _plain(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot store {type(x).__name__} in a trace")


class _Codes:
    """Event kinds <-> the small integers stored in ``events.kind``."""

    def __init__(self, rows):
        self.layout = {}  # code -> (phase, kind, subject, fields)
        self.code = {}    # (phase, kind) -> code
        self.field_set = {}  # code -> its fields as a set: data with just these keys needs no payload
        for code, phase, kind, subject, *fields in rows:
            self.add(code, phase, kind, subject, tuple(f for f in fields if f))

    def add(self, code, phase, kind, subject, fields):
        self.layout[code] = (phase, kind, subject, fields)
        self.code[phase, kind] = code
        self.field_set[code] = frozenset(fields)

    def of_kinds(self, kinds):
        return sorted(code for code, (_, kind, _, _) in self.layout.items() if kind in kinds)


class Recorder:
    """Records a run into ``directory/trace.sqlite``, streaming as it goes.

    `every`: snapshot interval the trace advertises in ``Trace.steps``.
    `detail`: "updates" keeps what replay needs plus each neuron's batch means
    per step; "messages" also keeps every message (its batch mean, and the
    per-sample vectors of fire and message events when the batch has at most
    :data:`SAMPLE_LIMIT` samples, or always/never with `samples` True/False).
    `scenario_text` and `metadata` (a JSON-able dict) go into the run metadata.
    An existing trace in `directory` is replaced, unless another process is
    still recording it.  While the recorder writes, the directory is locked
    (see :mod:`simnet.files`), which is how a reader tells a run in progress
    from one whose process died.

    >>> import tempfile, simnet as sn
    >>> run = tempfile.mkdtemp()
    >>> net = sn.Network.layered([2, 3, 1], seed=0)
    >>> _ = net.train([[0, 1], [1, 0]], [[1], [0]], steps=20, lr=0.1, recorder=sn.Recorder(run, every=5))
    >>> sn.open_trace(run).steps
    [0, 5, 10, 15, 20]
    """

    def __init__(self, directory, *, every=1, detail="updates", scenario_text=None, metadata=None,
                 samples=None, keyframe_every=KEYFRAME_EVERY):
        if detail not in DETAILS:
            raise TraceError(f"unknown trace detail {detail!r}; expected one of {', '.join(DETAILS)}")
        self.every = positive_int(every, "every", TraceError)
        self.keyframe_every = positive_int(keyframe_every, "keyframe_every", TraceError)
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self.detail = detail
        self.samples = samples
        self._sampling = detail == "messages" and samples is not False  # per-sample vectors may be kept
        self.kinds = kinds_for(detail)
        self._create(scenario_text, dict(metadata or {}))
        self._handlers = {
            "fire": self._on_fire, "message": self._on_message,
            "weight_update": self._on_update, "bias_update": self._on_update,
            "step_begin": self._on_step_begin, "loss": self._on_loss, "step_end": self._on_step_end,
            "run_begin": self._on_run_begin, "run_end": self._on_run_end,
            "neuron_added": self._on_neuron_added, "neuron_removed": self._on_neuron_removed,
            "connection_added": self._on_connection_added, "connection_removed": self._on_connection_removed,
        }
        self._batch_handlers = {"fire": self._on_vector_batch, "message": self._on_vector_batch,
                                "weight_update": self._on_update_batch, "bias_update": self._on_update_batch,
                                "connection_added": self._on_connections_added}

    # ---- the file ----------------------------------------------------------

    def _create(self, scenario_text, metadata):
        self._writer = self._lock = self._failure = None
        started = _now()  # before the file exists: a bad SOURCE_DATE_EPOCH leaves nothing behind
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = lock_directory(self.directory)
        except BlockingIOError:
            raise TraceError(f"{self.directory}: a run is being recorded there (by another process, or by a "
                             "Recorder not closed yet)") from None
        except OSError as error:
            raise TraceError(f"{self.path}: cannot create the trace: {error}") from None
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA page_size = 16384")  # fewer, fuller pages: faster appends
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany("INSERT INTO kinds VALUES (?,?,?,?,?,?,?)",
                           [(code, phase, kind, subject, *(fields + (None,) * 3)[:3])
                            for code, (phase, kind, subject, fields) in enumerate(LAYOUT, start=1)])
            meta = {**metadata, "version": _version(), "schema": SCHEMA_VERSION, "start_time": started,
                    "detail": self.detail, "every": self.every, "keyframe_every": self.keyframe_every,
                    "scenario_text": scenario_text}
            db.executemany("INSERT INTO meta VALUES (?,?)", [(k, _json(v)) for k, v in meta.items()])
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
            self._codes = _Codes(db.execute("SELECT * FROM kinds"))
            db.close()
        except (OSError, sqlite3.Error) as error:
            self._unlock()
            raise TraceError(f"{self.path}: cannot create the trace: {error}") from None
        except BaseException:
            self._unlock()
            raise
        self._open()
        self._weight_code = self._codes.code["update", "weight_update"]
        self._bias_code = self._codes.code["update", "bias_update"]
        self._state = NetworkState()
        # code -> (values dict, keys, new values) of the last update batch, not yet written into the state:
        # the next batch of the same subjects overwrites it all, so most steps never pay for the dict writes
        self._unsettled = {}
        self._neuron_id, self._connection_id = {}, {}
        # subject names -> (keys, ids, subject_lists id), and per (phase, kind) the names of the last batch
        self._subject_lists, self._subject_cache = {}, {}
        self._next_subject_list = 1
        self._next_neuron = self._next_connection = 1
        self._announced = None
        self._runs = []  # [first step, last step] of each run recorded
        self._reset_buffers()
        self._first_seq = {}   # step -> first seq seen for it
        self._open_step = None  # [step, first_seq, lr, batch_size, loss, accuracy] while a step runs
        self._steps_waiting = self._bytes_waiting = 0

    def _open(self):
        if self._lock is None:  # a later run after close(): the directory is locked again
            try:
                self._lock = lock_directory(self.directory)
            except OSError as error:
                raise TraceError(f"{self.path}: cannot write the trace: {error}") from None
        # the writer takes the lock over (and it is closed here whatever happens)
        lock, self._lock = self._lock, None
        try:
            self._writer = WriterProcess(self.path, lock=lock)
        except WriterError as error:
            raise TraceError(f"{self.path}: {error}") from None

    def _unlock(self):
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _reset_buffers(self):
        self._rows = []            # events rows, in seq order
        self._batches = []         # batches rows
        self._payloads = []        # (seq, data JSON, samples)
        # fire and message rows wait for the step's end to get their batch means all at once
        self._fire_rows, self._fire_columns = [], ([], [])
        self._message_rows, self._message_columns = [], ([],)
        self._sql = []             # (statement, parameters) for the topology and step tables

    def close(self, reason=None):
        """Commit what is buffered and close the file (a run's end does this too).

        A run still going (stopped by an exception) is marked as ended with
        `reason` ("interrupted" or "failed") after its last whole step; without
        a reason it is left without an end, as if its process had died.  After
        the writer has failed nothing more is written.
        """
        if self._failure is not None:
            return
        if reason is not None and self._runs and self._runs[-1][1] is None:
            # a step cut short has no ``steps`` row: readers see the run end after its last whole step
            self._runs[-1][1] = self._last_done
            self._set_meta(end_reason=reason, last_step=self._last_done, end_time=_now(), runs=self._runs)
        if self._writer is not None or self._rows or self._batches or self._sql:
            self._commit()
            writer, self._writer = self._writer, None
            try:
                writer.finish()
            except WriterError as error:
                self._failure = TraceError(f"{self.path}: cannot write the trace: {error}")
                raise self._failure from None

    @property
    def state(self):
        """The network (a NetworkState) as the events recorded so far describe it."""
        self._settle()
        return self._state

    def _settle(self):
        """Write the update batches still pending into the state."""
        for values, keys, new in self._unsettled.values():
            values.update(zip(keys, new.tolist()))
        self._unsettled.clear()

    # ---- events in ---------------------------------------------------------

    def __call__(self, e):
        self._handlers.get(e.kind, self._on_other)(e)

    def _on_fire(self, e):
        row = [e.seq, e.step, self._codes.code[e.phase, "fire"], self._neuron_id[e.neuron], None, None, None]
        self._rows.append(row)
        d = e.data
        first, second = (d["z"], d["a"]) if e.phase == "forward" else (d["dL_da"], d["dL_dz"])
        self._fire_rows.append(row)
        self._fire_columns[0].append(first)
        self._fire_columns[1].append(second)
        if self._keeps_samples(len(first)):
            self._add_samples(e.seq, np.concatenate((first, second)).tobytes())

    def _on_message(self, e):
        row = [e.seq, e.step, self._codes.code[e.phase, "message"],
               self._connection_id[e.source, e.target], None, None, None]
        self._rows.append(row)
        value = e.data["value"]
        self._message_rows.append(row)
        self._message_columns[0].append(value)
        if self._keeps_samples(len(value)):
            self._add_samples(e.seq, np.asarray(value, dtype=np.float64).tobytes())

    def _keeps_samples(self, samples):
        """Whether the per-sample vectors of a batch of `samples` go into the trace."""
        return self._sampling and (self.samples or samples <= SAMPLE_LIMIT)

    def _add_samples(self, seq, vectors):
        self._payloads.append((seq, None, vectors))
        self._bytes_waiting += len(vectors)

    def _on_update(self, e):
        # engines send updates in batches (on_batch); single ones come from replayed or hand-made events
        d = e.data
        if e.kind == "weight_update":
            code, key, ids, values = self._weight_code, (e.source, e.target), self._connection_id, self.state.weight
        else:
            code, key, ids, values = self._bias_code, e.neuron, self._neuron_id, self.state.bias
        self._rows.append((e.seq, e.step, code, ids[key], d["old"], d["new"], d["grad"]))
        values[key] = d["new"]

    def on_batch(self, batch):
        """Take an EventBatch whole: one ``batches`` row, or one events row per event when samples are kept."""
        handler = self._batch_handlers.get(batch.kind)
        if handler is None or not len(batch):
            for event in batch:
                self(event)
        else:
            handler(batch)

    def _on_update_batch(self, batch):
        code = self._codes.code[batch.phase, batch.kind]
        keys, _, listed = self._subjects(batch)
        data = batch.data
        new = np.asarray(data["new"], dtype=np.float64)
        self._add_batch(batch, len(keys), code, listed, (data["old"], new, data["grad"]))
        pending = self._unsettled.get(code)
        if pending is not None and pending[1] is not keys:
            self._settle()
        self._unsettled[code] = (self._state.weight if code == self._weight_code else self._state.bias, keys, new)

    def _on_vector_batch(self, batch):
        """Fire and message batches: their vectors' batch means, and the vectors too when samples are kept."""
        code = self._codes.code[batch.phase, batch.kind]
        keys, subjects, listed = self._subjects(batch)
        data = batch.data
        columns = [np.asarray(data[f], dtype=np.float64) for f in self._codes.layout[code][3]]
        means = [mean_rows(c) for c in columns]
        if not self._keeps_samples(columns[0].shape[1]):
            self._add_batch(batch, len(keys), code, listed, means)
            return
        seqs = range(batch.seq, batch.seq + len(keys))
        self._rows.extend(zip(seqs, repeat(batch.step), repeat(code), subjects,
                              *(m.tolist() for m in means), *[repeat(None)] * (3 - len(means))))
        vectors = np.concatenate(columns, axis=1)
        self._payloads.extend(zip(seqs, repeat(None), (v.tobytes() for v in vectors)))
        self._bytes_waiting += vectors.nbytes

    def _subjects(self, batch):
        """A batch's subject keys (names or (source, target) pairs), their ids, and the subject_lists row of those.

        Engines name the same subjects every step, so one lookup and one stored
        list serve every batch about those subjects until the topology changes.
        """
        connections = batch.kind in ("message", "weight_update")
        first, second = (batch.sources, batch.targets) if connections else (batch.neurons, None)
        last = self._subject_cache.get((batch.phase, batch.kind))
        # the fast engine hands out the same name tuples every step: the very same objects need no comparing
        if last is not None and last[0] is first and last[1] is second:
            return last[2]
        names = (tuple(first), tuple(second)) if connections else (tuple(first),)  # a tuple stays the same object
        known = self._subject_lists.get(names)
        if known is None:
            keys = list(zip(*names)) if connections else list(names[0])
            ids = self._connection_id if connections else self._neuron_id
            subjects = [ids[key] for key in keys]
            listed = self._next_subject_list
            self._next_subject_list += 1
            self._sql.append(("INSERT INTO subject_lists VALUES (?,?)",
                              (listed, np.array(subjects, "<i8").tobytes())))
            known = self._subject_lists[names] = keys, subjects, listed
        self._subject_cache[batch.phase, batch.kind] = (*names, None)[:2] + (known,)
        return known

    def _forget_subjects(self):
        self._subject_lists.clear()
        self._subject_cache.clear()

    def _add_batch(self, batch, n, code, listed, values):
        """One ``batches`` row for the whole batch, its value columns as float64 blobs."""
        self._batches.append((batch.seq, batch.seq + n - 1, batch.step, code, listed,
                              *[np.asarray(v, dtype="<f8").tobytes() for v in values], *UNUSED[len(values)]))
        self._bytes_waiting += 8 * n * len(values)

    def _on_step_begin(self, e):
        self._finish_announcement()
        data = e.data
        self._open_step = [e.step, self._first_seq.pop(e.step, e.seq), data.get("lr"), data.get("batch_size"),
                           None, None]
        self._store(e, None)

    def _on_loss(self, e):
        if self._open_step is None:
            self._on_other(e)
            return
        data = e.data
        self._open_step[4:6] = data.get("loss"), data.get("accuracy")
        self._store(e, None)

    def _on_step_end(self, e):
        if self._open_step is None:
            self._on_other(e)
            return
        self._store(e, None)
        self._fill_means()
        step, first, lr, batch_size, loss, accuracy = self._open_step
        self._open_step = None
        self._first_seq.pop(step, None)
        self._last_done = step
        self._sql.append((STEP_UPSERT, (step, first, e.seq, lr, batch_size, loss, accuracy, 1)))
        if step % self.keyframe_every == 0:
            self._keyframe(step, e.seq)
        self._steps_waiting += 1
        if (len(self._rows) + len(self._batches) >= FLUSH_ROWS or self._steps_waiting >= FLUSH_STEPS
                or self._bytes_waiting >= FLUSH_BYTES):
            self._commit()

    def _on_run_begin(self, e):
        # a later run re-announces the whole topology; it replaces what was there
        self._announced = NetworkState()
        self._announced.lr = e.data.get("lr")
        self._announced_ids = {}
        self._run_start = self._last_done = e.step
        self._first_seq.setdefault(e.step, e.seq)
        self._runs.append([e.step, None])
        self._set_meta(seed=e.data.get("seed"), config=e.data, end_reason=None, runs=self._runs)
        self._on_other(e)

    def _on_run_end(self, e):
        self._finish_announcement()
        self._on_other(e)
        self._fill_means()
        if self._open_step is not None:  # a diverged step: kept for inspection, never replayed
            step, first, lr, batch_size, loss, accuracy = self._open_step
            self._sql.append((STEP_UPSERT, (step, first, e.seq, lr, batch_size, loss, accuracy, 0)))
            self._open_step = None
        else:
            self._sql.append((STEP_UPSERT, (e.step, self._first_seq.pop(e.step, e.seq), e.seq) + (None,) * 4 + (1,)))
        if self._runs:
            self._runs[-1][1] = e.data.get("steps")
        self._set_meta(end_reason=e.data.get("reason"), last_step=e.data.get("steps"), end_time=_now(),
                       runs=self._runs)
        self.close()

    def _on_neuron_added(self, e):
        self._record_topology(e)
        d, name = e.data, e.neuron
        target = self._announced if e.phase == "init" else self.state
        known = self._neuron_id.get(name)
        if e.phase == "init" and known is not None and self.state.kind.get(name) == (d["role"], d["activation"]):
            self._announced_ids[name] = known  # the same neuron, announced again
        else:
            if known is not None:  # announced anew with another role or function: a new neuron
                self._retire_neuron(name, e.step)
            self._neuron_id[name] = self._next_neuron
            self._sql.append(("INSERT INTO neurons VALUES (?,?,?,?,?,NULL)",
                              (self._next_neuron, name, d["role"], d["activation"], e.step)))
            if e.phase == "init":
                self._announced_ids[name] = self._next_neuron
            self._next_neuron += 1
        target.apply(e)
        self._store(e, self._neuron_id[name])

    def _on_connection_added(self, e):
        self._record_topology(e)
        connection = self._add_connection(e.phase, e.step, (e.source, e.target), e.data["weight"], e.data["frozen"])
        self._store(e, connection)

    def _on_connections_added(self, batch):
        """Many connections at once (a run announcing its network): their events rows, as single events'."""
        data = batch.data
        code = self._codes.code.get((batch.phase, batch.kind))
        if code is None or data.keys() != self._codes.field_set[code]:
            for event in batch:  # a kind or fields the layout lacks: single events keep them in payloads
                self(event)
            return
        self._record_topology(batch)
        phase, step, rows = batch.phase, batch.step, self._rows
        weights, frozen = (np.asarray(data[field]).tolist() for field in ("weight", "frozen"))
        for seq, key, weight, is_frozen in zip(range(batch.seq, batch.seq + len(batch)),
                                               zip(batch.sources, batch.targets), weights, frozen):
            rows.append((seq, step, code, self._add_connection(phase, step, key, weight, is_frozen),
                         weight, is_frozen, None))

    def _add_connection(self, phase, step, key, weight, frozen):
        """The connection `key` added to the announced topology or to the state; returns its id."""
        connection = self._connection_id.get(key)
        if phase == "init" and connection is not None:
            self._announced_ids[key] = connection
        else:
            connection = self._connection_id[key] = self._next_connection
            self._next_connection += 1
            source, target = key
            self._sql.append(("INSERT INTO connections VALUES (?,?,?,?,?,?,NULL)",
                              (connection, self._neuron_id[source], self._neuron_id[target], source, target, step)))
            if phase == "init":
                self._announced_ids[key] = connection
        (self._announced if phase == "init" else self.state).add_connection(key, weight, frozen)
        return connection

    def _on_connection_removed(self, e):
        self._record_topology(e)
        key = e.source, e.target
        self._store(e, self._connection_id[key])
        self._retire_connection(key, e.step)
        self.state.apply(e)

    def _on_neuron_removed(self, e):
        self._record_topology(e)
        self._store(e, self._neuron_id[e.neuron])
        self._retire_neuron(e.neuron, e.step)
        self.state.apply(e)

    def _retire_neuron(self, name, step):
        self._sql.append(("UPDATE neurons SET removed_step = ? WHERE id = ?", (step, self._neuron_id.pop(name))))

    def _retire_connection(self, key, step):
        self._sql.append(("UPDATE connections SET removed_step = ? WHERE id = ?",
                          (step, self._connection_id.pop(key))))

    def _record_topology(self, e):
        self._forget_subjects()  # names may now stand for other ids
        if e.phase != "init":
            self._finish_announcement()
        self._first_seq.setdefault(e.step, e.seq)

    def _on_other(self, e):
        """Any event without a handler of its own: script actions, loss, step ends..."""
        if e.phase != "init":
            self._finish_announcement()
        self._first_seq.setdefault(e.step, e.seq)
        subject = None
        if e.neuron is not None:
            subject = self._neuron_id.get(e.neuron)
        elif e.source is not None:
            subject = self._connection_id.get((e.source, e.target))
        if e.kind in STATE_KINDS:
            self.state.apply(e)
        self._store(e, subject)

    def _store(self, e, subject):
        code = self._codes.code.get((e.phase, e.kind))
        if code is None:
            code = self._new_code(e)
        fields = self._codes.layout[code][3]
        data = e.data
        self._rows.append((e.seq, e.step, code, subject, *[data.get(f) for f in fields], *UNUSED[len(fields)]))
        if data.keys() != self._codes.field_set[code]:
            rest = {k: v for k, v in data.items() if k not in fields}
            if rest:
                self._payloads.append((e.seq, _json(rest), None))

    def _new_code(self, e):
        # a kind this version does not know: kept whole in the payload
        code = max(self._codes.layout) + 1
        subject = "neuron" if e.neuron is not None else "connection" if e.source is not None else None
        self._codes.add(code, e.phase, e.kind, subject, ())
        self._sql.append(("INSERT INTO kinds VALUES (?,?,?,?,NULL,NULL,NULL)", (code, e.phase, e.kind, subject)))
        return code

    def _finish_announcement(self):
        """At a run's first step: its announced topology becomes the state, kept as a keyframe."""
        if self._announced is None:
            return
        kept, step = self._announced_ids, self._run_start
        self._forget_subjects()
        for name in [n for n in self._neuron_id if n not in kept]:
            self._retire_neuron(name, step)
        for key in [k for k in self._connection_id if k not in kept]:
            self._retire_connection(key, step)
        self._settle()
        self._state, self._announced = self._announced, None
        last = self._rows[-1][0]
        self._sql.append((STEP_UPSERT, (step, self._first_seq.pop(step, last), last) + (None,) * 4 + (1,)))
        self._keyframe(step, last)
        self._commit()

    def _keyframe(self, step, seq):
        """The full state after event `seq` of `step`."""
        sql, state = self._sql, self.state
        for table in ("keyframes", "keyframe_neurons", "keyframe_connections"):
            sql.append((f"DELETE FROM {table} WHERE step = ?", (step,)))
        sql.append(("INSERT INTO keyframes VALUES (?,?,?)", (step, seq, state.lr)))
        sql.append(("INSERT INTO keyframe_neurons VALUES (?,?,?,?)",
                    [(step, i, self._neuron_id[name], bias) for i, (name, bias) in enumerate(state.bias.items())]))
        sql.append(("INSERT INTO keyframe_connections VALUES (?,?,?,?,?)",
                    [(step, i, self._connection_id[key], weight, state.frozen[key])
                     for i, (key, weight) in enumerate(state.weight.items())]))

    def _fill_means(self):
        for rows, columns in ((self._fire_rows, self._fire_columns), (self._message_rows, self._message_columns)):
            if not rows:
                continue
            for i, column in enumerate(columns):
                for row, mean in zip(rows, batch_means(column)):
                    row[4 + i] = mean
                column.clear()
            rows.clear()

    def _set_meta(self, **values):
        self._sql.append(("INSERT OR REPLACE INTO meta VALUES (?,?)", [(k, _json(v)) for k, v in values.items()]))

    def _commit(self):
        """Write everything buffered in one transaction."""
        if self._failure is not None:
            raise self._failure
        if self._writer is None:
            self._open()
        self._fill_means()
        statements = [("INSERT INTO events VALUES (?,?,?,?,?,?,?)", self._rows),
                      ("INSERT INTO batches VALUES (?,?,?,?,?,?,?,?)", self._batches),
                      ("INSERT INTO payloads VALUES (?,?,?)", self._payloads)]
        # runs of one statement (a network's topology, say) go in one executemany
        statements += [(statement, [row for _, rows in group for row in (rows if isinstance(rows, list) else (rows,))])
                       for statement, group in groupby(self._sql, key=itemgetter(0))]
        try:
            self._writer.write(statements)
        except WriterError as error:
            # what the writer had not committed is lost: writing on after the gap would make a trace
            # whose steps do not follow from one another
            self._writer = None
            self._failure = TraceError(f"{self.path}: cannot write the trace: {error}")
            raise self._failure from None
        self._rows, self._batches, self._payloads, self._sql = [], [], [], []
        self._steps_waiting = self._bytes_waiting = 0


def _now():
    """The time to record, in UTC: now, or SOURCE_DATE_EPOCH's (seconds) when set, as in reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        return datetime.fromtimestamp(int(epoch), timezone.utc).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        raise TraceError(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, got {epoch!r}") from None


def _version():
    from ..version import __version__
    return __version__


# ---- reading -----------------------------------------------------------------

def _trace_file(path):
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise TraceError(f"{path}: no trace there (expected a run directory or a {FILENAME} file)")
    return path


def _check_header(path):
    """Reject what is not an SQLite file before SQLite sees it; whether its pages hold together is SQLite's to say.

    (The header's page count is no guide: in WAL mode it lags or leads the
    file while a checkpoint copies pages, and the WAL holds the rest.)
    """
    with open(path, "rb") as f:
        header = f.read(100)
    if not header:
        raise TraceError(f"{path}: not a simnet trace (an empty file: a run stopped before it began its trace "
                         f"leaves one)")
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise TraceError(f"{path}: not a simnet trace (not an SQLite database)")


def open_trace(path):
    """The Trace in `path` (a run directory or a trace.sqlite file), opened read-only.

    Raises TraceError when there is no trace there or it cannot be read.

    >>> import tempfile, simnet as sn
    >>> run = tempfile.mkdtemp()
    >>> _ = sn.Network.layered([1, 1], seed=0).train([[1.0]], [[2.0]], steps=3, lr=0.1, recorder=sn.Recorder(run))
    >>> with sn.open_trace(run) as trace:
    ...     print(trace.status, [e["kind"] for e in trace.events(step=3, kind="step_end")])
    complete ['step_end']
    """
    path = _trace_file(path)
    _check_header(path)
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as error:
        raise TraceError(f"{path}: cannot open the trace: {error}") from None
    try:
        return Trace(path, db)
    except BaseException:
        db.close()
        raise


def _guard(method):
    """Turn SQLite's complaints about a damaged file into TraceError naming it."""
    import functools

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        self._check_open()
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            raise self._database_error(error) from None
    return guarded


def _number(value):
    """Whether `value`, as SQLite gave it, is a number (the value columns hold nothing else)."""
    return type(value) in (float, int)


def _step_number(value):
    return type(value) is int and value >= 0


def _optional(check):
    return lambda value: value is None or check(value)


def _runs(value):
    return isinstance(value, list) and all(
        isinstance(run, list) and len(run) == 2 and _step_number(run[0]) and _optional(_step_number)(run[1])
        for run in value)


# what the reader relies on in ``meta``: key -> (check, what the value must be)
META_CHECKS = {
    "every": (lambda v: type(v) is int and v >= 1, "a positive integer"),
    "detail": (_optional(lambda v: v in DETAILS), f"one of {', '.join(DETAILS)}"),
    "end_reason": (_optional(lambda v: isinstance(v, str)), "text"),
    "last_step": (_optional(_step_number), "a step number"),
    "seed": (_optional(lambda v: type(v) is int), "an integer"),
    "init": (lambda v: isinstance(v, str), "text"),
    "config": (_optional(lambda v: isinstance(v, dict)), "a JSON object"),
    "scenario_text": (_optional(lambda v: isinstance(v, str)), "text"),
    "runs": (_optional(_runs), "a list of [first, last] steps"),
}


class Trace:
    """A recorded run, read-only: events, snapshots, exact replay of the network at any step.

    Attributes: ``path``, ``metadata`` (dict), ``detail``, ``every``,
    ``first_step`` (the state the recording starts from), ``last_step`` (last
    step written whole), ``complete`` (the run ended and said so),
    ``end_reason`` (complete, interrupted, diverged, failed or None), ``steps``
    (the snapshot steps: the start, every ``every``-th, the ends of runs),
    ``running`` (its run is still being recorded), ``status`` (all that in words).
    """

    def __init__(self, path, db):
        self.path, self._db = Path(path), db
        self._closed = False
        self._load()

    @_guard
    def _load(self):
        # one read transaction: a trace being written shows all its tables as of one commit
        self._db.execute("BEGIN")
        try:
            self._read_all()
        finally:
            self._db.rollback()

    def _read_all(self):
        db = self._db
        app, version = db.execute("PRAGMA application_id").fetchone()[0], db.execute("PRAGMA user_version").fetchone()[0]
        if app != APPLICATION_ID:
            if app == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                raise TraceError(f"{self.path}: not a simnet trace yet (an SQLite database without tables: a run "
                                 f"stopped before it set up its trace leaves one)")
            raise TraceError(f"{self.path}: not a simnet trace (an SQLite database of another kind)")
        if version > SCHEMA_VERSION:
            raise TraceError(f"{self.path}: trace schema {version} is newer than this simnet reads "
                             f"(up to {SCHEMA_VERSION}); upgrade simnet")
        if version < 1:
            raise TraceError(f"{self.path}: not a simnet trace (no schema version)")
        self._has_batches = version >= 2  # schema 1 kept every event in ``events``
        self.metadata = self._read_meta()
        self.detail = self.metadata.get("detail")
        self.every = self.metadata.get("every", 1)
        self.end_reason = self.metadata.get("end_reason")
        self.complete = self.end_reason is not None
        self._codes = self._read_kinds()
        self._neurons = self._read_neurons()
        self._connections = self._read_connections()
        self._step_ranges = self._read_steps()
        self._latest_step = max(self._step_ranges, default=-1)  # a diverged step comes after the last
        self._keyframes = self._read_keyframes()  # sorted (step, seq, lr)
        self._subject_lists = {}  # subject_lists id -> its ids, checked
        done = [s for s, (_, _, d) in self._step_ranges.items() if d]
        self.first_step = self._keyframes[0][0] if self._keyframes else None
        self.last_step = max(done) if done else None
        if self.first_step is None or self.last_step is None:
            self.first_step = self.last_step = None
        if self.end_reason == "diverged" and self.metadata.get("last_step", self.last_step) is None:
            raise self._damaged("meta 'last_step'", "a diverged run must say its last step")
        self.steps = self._snapshot_steps()
        self._cursor = None  # (step, NetworkState) of the last replay, to go on from

    # ---- what the file holds, checked: a trace is input like any other ----------

    def _damaged(self, where, why):
        """The TraceError for a trace whose `where` (a table, a row, a key) holds what simnet never writes."""
        return TraceError(f"{self.path}: damaged trace: {where}: {why}")

    def _database_error(self, error):
        """The TraceError for an SQLite error met while reading."""
        if self._closed:
            return self._closed_error()
        return TraceError(f"{self.path}: damaged trace: {' '.join(str(error).split())}")

    def _closed_error(self):
        return TraceError(f"{self.path}: the trace is closed; open it again to read it")

    def _check_open(self):
        if self._closed:
            raise self._closed_error()

    def _read_meta(self):
        metadata = {}
        for key, value in self._db.execute("SELECT key, value FROM meta"):
            try:
                metadata[key] = json.loads(value)
            except (TypeError, ValueError, RecursionError):
                raise self._damaged(f"meta {key!r}", f"not JSON: {_excerpt(value)}") from None
        for key, (check, what) in META_CHECKS.items():
            if key in metadata and not check(metadata[key]):
                raise self._damaged(f"meta {key!r}", f"must be {what}, got {_excerpt(metadata[key])}")
        return metadata

    def _read_kinds(self):
        rows = self._db.execute("SELECT code, phase, kind, subject, v1, v2, v3 FROM kinds").fetchall()
        for code, phase, kind, subject, *fields in rows:
            if (type(code) is not int or not isinstance(phase, str) or not isinstance(kind, str)
                    or subject not in (None, "neuron", "connection")
                    or not all(f is None or isinstance(f, str) for f in fields)):
                raise self._damaged("kinds", f"code {_excerpt(code)} is not a kind: "
                                    f"{_excerpt((phase, kind, subject, *fields))}")
        codes = _Codes(rows)
        for phase, kind, subject, fields in LAYOUT:  # what the reader decodes by these names
            code = codes.code.get((phase, kind))
            if code is None or codes.layout[code][2:] != (subject, fields):
                raise self._damaged("kinds", f"the {phase} {kind} kind is missing or changed")
        return codes

    def _read_neurons(self):
        neurons = {}
        for i, name, role, fn in self._db.execute("SELECT id, name, role, activation FROM neurons"):
            if type(i) is not int or not isinstance(name, str) or role not in ROLES or fn not in ACTIVATIONS:
                raise self._damaged("neurons", f"row {_excerpt(i)} is not a neuron: {_excerpt((name, role, fn))}")
            neurons[i] = (name, role, fn)
        return neurons

    def _read_connections(self):
        names = {name for name, _, _ in self._neurons.values()}
        connections = {}
        for i, source, target in self._db.execute("SELECT id, source, target FROM connections"):
            if type(i) is not int or source not in names or target not in names:
                raise self._damaged("connections", f"row {_excerpt(i)} does not join two neurons: "
                                    f"{_excerpt((source, target))}")
            connections[i] = (source, target)
        return connections

    def _read_steps(self):
        ranges, previous = {}, None
        for step, first, last, done, *numbers in self._db.execute(
                "SELECT step, first_seq, last_seq, done, lr, batch_size, loss, accuracy FROM steps ORDER BY step"):
            if not (_step_number(step) and type(first) is int and type(last) is int and first <= last
                    and done in (0, 1) and all(v is None or _number(v) for v in numbers)):
                raise self._damaged("steps", f"step {_excerpt(step)} is not a step: "
                                    f"{_excerpt((first, last, done, *numbers))}")
            if previous is not None and step != previous + 1:
                raise self._damaged("steps", f"step {step} follows step {previous}; steps go one by one")
            ranges[step], previous = (first, last, done), step
        return ranges

    def _read_keyframes(self):
        keyframes = self._db.execute("SELECT step, seq, lr FROM keyframes ORDER BY step").fetchall()
        for step, seq, lr in keyframes:
            if step not in self._step_ranges or type(seq) is not int or not (lr is None or _number(lr)):
                raise self._damaged("keyframes", f"step {_excerpt(step)} is not a keyframe of a recorded step: "
                                    f"{_excerpt((seq, lr))}")
        return keyframes

    def __repr__(self):
        return f"Trace({str(self.path)!r}, steps {self.first_step}..{self.last_step}, {self.status})"

    def _repr_png_(self):
        from ..viz.render import trace_png  # matplotlib loads only when a notebook asks for the picture
        return trace_png(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the file; the Trace reads nothing after this."""
        self._db.close()
        self._closed = True

    @property
    def running(self):
        """True while the process recording this trace is still at it (its run has not ended yet)."""
        return self.end_reason is None and self.path.name == FILENAME and directory_locked(self.path.parent)

    @property
    def status(self):
        """In words: complete, interrupted, diverged, failed, running, or where an incomplete run stopped.

        A run without an end is running while the process recording it holds
        its directory's lock, and incomplete once that process is gone.
        """
        if self.end_reason == "complete":
            return "complete"
        if self.end_reason in ("interrupted", "failed"):
            return f"{self.end_reason} after step {self.last_step}"
        if self.end_reason == "diverged":
            return f"diverged at step {self.metadata.get('last_step', self.last_step) + 1}"
        if self.running:
            return "running: no step recorded yet" if self.last_step is None else \
                f"running: recorded up to step {self.last_step} when opened"
        if self.last_step is None:
            return "incomplete: no steps recorded"
        return f"incomplete: the recording process died after step {self.last_step}"

    def _snapshot_steps(self):
        if self.last_step is None:
            return []
        # each run's start and last step, like a live SnapshotBuilder
        bounds = {step for run in self.metadata.get("runs") or () for step in run if step is not None}
        every = {step for step, (_, _, done) in self._step_ranges.items() if done and step % self.every == 0}
        found = {self.first_step, self.last_step} | bounds | every
        return sorted(s for s in found if self.first_step <= s <= self.last_step)

    # ---- events ------------------------------------------------------------

    def _check_step(self, step):
        """`step` as an int if the trace has it (a diverged last step included); TraceError if not."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TraceError(f"{self.path}: step must be an integer, got {step!r}")
        if self.last_step is None or not self.first_step <= step <= self._latest_step:
            span = "no steps" if self.last_step is None else f"steps {self.first_step} to {self.last_step}"
            raise TraceError(f"{self.path}: unknown step {step}; the trace holds {span}")
        return int(step)

    def _check_finished(self, step):
        """`step` as an int if the trace has it and it finished (a diverged step did not); TraceError if not."""
        step = self._check_step(step)
        if step > self.last_step:
            raise TraceError(f"{self.path}: step {step} did not finish (the trace holds steps "
                             f"{self.first_step} to {self.last_step})")
        return step

    def _seq_range(self, first_step, last_step):
        rows = [self._step_ranges[s] for s in range(first_step, last_step + 1) if s in self._step_ranges]
        if not rows:
            return None
        return min(r[0] for r in rows), max(r[1] for r in rows)

    def _subject_ids(self, neuron=None, connection=None):
        if neuron is not None:
            neurons = [i for i, (name, _, _) in self._neurons.items() if name == neuron]
            if not neurons:
                raise TraceError(f"{self.path}: unknown neuron {neuron!r}")
            touching = [i for i, (s, t) in self._connections.items() if neuron in (s, t)]
            return neurons, touching
        if isinstance(connection, str):
            parts = [p.strip() for p in connection.split("->")]
            if len(parts) != 2:
                raise TraceError(f"{self.path}: connection must look like 'source->target', got {connection!r}")
            connection = tuple(parts)
        ids = [i for i, key in self._connections.items() if key == tuple(connection)]
        if not ids:
            raise TraceError(f"{self.path}: unknown connection {connection[0]!r} -> {connection[1]!r}")
        return [], ids

    def _kind_codes(self, kind):
        kinds = {kind} if isinstance(kind, str) else set(kind)
        unknown = kinds - {k for _, k, _, _ in self._codes.layout.values()} - set(KINDS)
        if unknown:
            raise TraceError(f"{self.path}: unknown event kind {sorted(unknown)[0]!r}; "
                             f"expected one of {', '.join(KINDS)}")
        return self._codes.of_kinds(kinds)

    @_guard
    def events(self, step=None, kind=None, neuron=None, connection=None, steps=None, phase=None):
        """Events as dicts (seq, step, phase, kind, neuron, source, target and the numbers), in seq order.

        Filters: `step` one step, `steps` an inclusive (first, last) range, `kind`
        a kind or several, `phase`, `neuron` (its own events and those of its
        connections), `connection` ("a->b" or a pair).  Fire and message events
        carry batch means under their data names; with samples kept, the
        per-sample vectors under ``<name>_samples``.
        """
        span = codes = subjects = None
        if step is not None or steps is not None:
            first, last = (step, step) if step is not None else steps
            span = self._seq_range(self._check_step(first), self._check_step(last))
            if span is None:
                return iter(())

        if kind is not None:
            codes = set(self._kind_codes(kind))
        if phase is not None:
            by_phase = {c for c, (p, _, _, _) in self._codes.layout.items() if p == phase}
            if not by_phase:
                raise TraceError(f"{self.path}: unknown phase {phase!r}")
            codes = by_phase if codes is None else codes & by_phase
        if neuron is not None or connection is not None:
            ids = dict(zip(("neuron", "connection"), self._subject_ids(neuron, connection)))
            subjects = {c: set(ids[s]) for c, (_, _, s, _) in self._codes.layout.items()
                        if ids.get(s) and (codes is None or c in codes)}
        return (self._event(row).as_dict() for row in self._rows(span, codes, subjects))

    def _rows(self, span=None, codes=None, subjects=None):
        """Event rows (seq, step, kind, subject, v1, v2, v3, data, samples), in seq order, streamed.

        `span`: an inclusive (first, last) seq range; `codes`: the kinds kept (None: all);
        `subjects`: {code: ids}, keeping only events of those codes about those ids.
        Rows of ``events`` and the events of ``batches`` rows come out merged.
        """
        if subjects is not None:
            codes = set(subjects)
        self._check_open()
        batched = self._batched_rows(span, codes, subjects) if self._has_batches else ()
        try:
            yield from heapq.merge(self._single_rows(span, codes, subjects), batched, key=itemgetter(0))
        except sqlite3.DatabaseError as error:
            raise self._database_error(error) from None

    def _single_rows(self, span, codes, subjects):
        sql = ("SELECT e.seq, e.step, e.kind, e.subject, e.v1, e.v2, e.v3, p.data, p.samples "
               "FROM events e LEFT JOIN payloads p ON p.seq = e.seq WHERE 1")
        params = []
        if span is not None:
            sql += " AND e.seq BETWEEN ? AND ?"
            params += span
        if subjects is not None:
            options = [f"(e.kind = ? AND e.subject IN ({_marks(ids)}))" for ids in subjects.values()]
            sql += " AND (" + (" OR ".join(options) or "0") + ")"
            for code, ids in subjects.items():
                params += [code, *ids]
        elif codes is not None:
            sql += f" AND e.kind IN ({_marks(codes)})"
            params += sorted(codes)
        return self._checked(self._db.execute(sql + " ORDER BY e.seq", params))

    def _checked(self, rows):
        """``events`` rows as they come, each checked: a known kind, about a subject the trace holds, numbers."""
        layout = self._codes.layout
        known = {None: None, "neuron": self._neurons, "connection": self._connections}
        for row in rows:
            seq, step, code, subject, *values = row[:7]
            kind = layout.get(code)
            if kind is None:
                raise self._damaged("events", f"event {seq}: unknown kind code {_excerpt(code)}")
            subjects = known[kind[2]]
            if (type(step) is not int or not all(v is None or _number(v) for v in values)
                    or (subjects is not None and subject is not None and subject not in subjects)
                    or (subject is None and subjects is not None and kind[1] in STATE_KINDS)):
                raise self._damaged("events", f"event {seq} ({kind[1]}) is not one simnet records: "
                                    f"{_excerpt((step, subject, *values))}")
            yield row

    def _batched_rows(self, span, codes, subjects):
        """The events of ``batches`` rows, one row each as ``_single_rows`` gives them."""
        sql = "SELECT b.seq, b.last_seq, b.step, b.kind, b.subjects, b.v1, b.v2, b.v3 FROM batches b WHERE 1"
        params = []
        if span is not None:  # batches never overlap: the one holding span's first seq starts last before it
            sql += " AND b.seq >= coalesce((SELECT max(seq) FROM batches WHERE seq <= ?), 0) AND b.seq <= ?"
            params += span
        if codes is not None:
            sql += f" AND b.kind IN ({_marks(codes)})"
            params += sorted(codes)
        first, last = span if span is not None else (0, float("inf"))
        for seq, last_seq, step, code, listed, *blobs in self._db.execute(sql + " ORDER BY b.seq", params):
            ids = self._batch_subjects(seq, last_seq, step, code, listed)
            if not all(b is None or (type(b) is bytes and len(b) == 8 * len(ids)) for b in blobs):
                raise self._damaged("batches", f"batch {seq}: its values are not {len(ids)} float64 each: "
                                    f"{_excerpt([None if b is None else len(b) for b in blobs])} bytes")
            columns = [repeat(None) if b is None else np.frombuffer(b, dtype="<f8").tolist() for b in blobs]
            kept = subjects[code] if subjects is not None else None
            for at, (subject, v1, v2, v3) in enumerate(zip(ids, *columns), start=seq):
                if first <= at <= last and (kept is None or subject in kept):
                    yield at, step, code, subject, v1, v2, v3, None, None

    def _batch_subjects(self, seq, last_seq, step, code, listed):
        """The subject ids of the batch `seq` (a list as long as the batch), checked; TraceError if they are not."""
        kind = self._codes.layout.get(code)
        if kind is None or kind[2] is None:
            raise self._damaged("batches", f"batch {seq}: kind code {_excerpt(code)} is not a kind about subjects")
        if type(last_seq) is not int or last_seq < seq or type(step) is not int:
            raise self._damaged("batches", f"batch {seq}: last_seq {_excerpt(last_seq)}, step {_excerpt(step)}")
        ids = self._subject_lists.get(listed)
        if ids is None:
            row = self._db.execute("SELECT subjects FROM subject_lists WHERE id = ?", (listed,)).fetchone()
            if row is None or type(row[0]) is not bytes or len(row[0]) % 8:
                raise self._damaged("subject_lists", f"batch {seq}: its list {_excerpt(listed)} is "
                                    + ("missing" if row is None else "not int64 ids"))
            ids = np.frombuffer(row[0], dtype="<i8").tolist()
            subjects = self._neurons if kind[2] == "neuron" else self._connections
            unknown = [i for i in ids if i not in subjects]
            if unknown:
                raise self._damaged("subject_lists", f"list {listed}: {kind[2]} id {unknown[0]} names nothing")
            self._subject_lists[listed] = ids
        if len(ids) != last_seq - seq + 1:
            raise self._damaged("batches", f"batch {seq}: {last_seq - seq + 1} events, but its subject list "
                                f"{listed} names {len(ids)}")
        return ids

    def _event(self, row):
        """An Event from an events row (plus its payload)."""
        seq, step, code, subject, v1, v2, v3, data, samples = row
        phase, kind, subject_kind, fields = self._codes.layout[code]
        neuron = source = target = None
        values = dict(zip(fields, (v1, v2, v3)))
        if subject_kind == "neuron" and subject is not None:
            neuron, role, fn = self._neurons[subject]
            if kind == "neuron_added":
                values["role"], values["activation"] = role, fn
        elif subject_kind == "connection" and subject is not None:
            source, target = self._connections[subject]
        if "frozen" in values:
            values["frozen"] = bool(values["frozen"])
        if kind in ("weight_update", "bias_update") and None not in (v1, v2):
            values["delta"] = v2 - v1
        if kind in ("step_begin",) and values.get("batch_size") is not None:
            size = values["batch_size"]
            if not (isinstance(size, int) or size.is_integer()):
                raise self._damaged("events", f"event {seq}: batch size {_excerpt(size)}")
            values["batch_size"] = int(size)
        if data:
            values.update(self._payload(seq, data))
        if samples:
            if type(samples) is not bytes or not fields or len(samples) % (8 * len(fields)):
                raise self._damaged("payloads", f"event {seq}: samples are not {len(fields)} float64 vectors")
            vectors = np.frombuffer(samples, dtype=np.float64).reshape(len(fields), -1)
            for name, vector in zip(fields, vectors):
                values[f"{name}_samples"] = vector
        return Event(seq, step, phase, kind, neuron, source, target, values)

    def _payload(self, seq, data):
        """The JSON object of a payload's ``data``; TraceError if it is none."""
        try:
            value = json.loads(data)
        except (TypeError, ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise self._damaged("payloads", f"event {seq}: data is not a JSON object: {_excerpt(data)}")
        return value

    @_guard
    def history(self):
        """Per-step loss and accuracy (NaN where there is none) as numpy arrays."""
        rows = self._db.execute("SELECT step, loss, accuracy FROM steps WHERE done = 1 AND batch_size IS NOT NULL "
                                "ORDER BY step").fetchall()
        if not all(_step_number(r[0]) and all(v is None or _number(v) for v in r[1:]) for r in rows):
            raise self._damaged("steps", "a step's loss or accuracy is not a number")
        step = np.array([r[0] for r in rows], dtype=np.int64)
        loss = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)
        accuracy = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64)
        return {"step": step, "loss": loss, "accuracy": accuracy}

    @_guard
    def event_counts(self):
        """How many events of each kind the trace holds: {kind: count}."""
        counts = {}
        sql = "SELECT 'events', kind, count(*), 1 FROM events GROUP BY kind"
        if self._has_batches:  # a batch counts its seqs: they must be in order, within the recorded steps
            sql += (" UNION ALL SELECT 'batches', kind, sum(last_seq - seq + 1), min(typeof(last_seq) = 'integer'"
                    " AND last_seq >= seq AND last_seq <= (SELECT max(last_seq) FROM steps)) FROM batches GROUP BY kind")
        for table, code, n, fits in self._db.execute(sql):
            if code not in self._codes.layout:
                raise self._damaged(table, f"unknown kind code {_excerpt(code)}")
            if not fits:
                raise self._damaged(table, f"a batch of {self._codes.layout[code][1]} events ends before it "
                                    f"begins or after the last recorded step")
            kind = self._codes.layout[code][1]
            counts[kind] = counts.get(kind, 0) + n
        return counts

    def actions(self):
        """Scripted actions: a list of {step, action, label}."""
        return [{"step": e["step"], "action": e.get("action"), "label": e.get("label")}
                for e in self.events(kind="action")]

    # ---- replay ------------------------------------------------------------

    @_guard
    def _state_at(self, step):
        """The NetworkState right after `step`: the nearest keyframe, then the events since."""
        step = self._check_finished(step)
        db = self._db
        kf_step, kf_seq, lr = self._keyframes[bisect.bisect_right(self._keyframes, (step, math.inf)) - 1]
        cursor = self._cursor
        if cursor is not None and kf_step <= cursor[0] <= step:
            state, after = cursor[1].copy(), self._step_ranges[cursor[0]][1]
        else:
            state = NetworkState()
            state.lr = lr
            for neuron, bias in db.execute("SELECT neuron, bias FROM keyframe_neurons WHERE step = ? "
                                           "ORDER BY position", (kf_step,)):
                if neuron not in self._neurons or not _number(bias):
                    raise self._damaged("keyframe_neurons", f"step {kf_step}: neuron {_excerpt(neuron)}, "
                                        f"bias {_excerpt(bias)}")
                name, role, fn = self._neurons[neuron]
                state.kind[name], state.bias[name] = (role, fn), bias
            for connection, weight, frozen in db.execute(
                    "SELECT connection, weight, frozen FROM keyframe_connections WHERE step = ? ORDER BY position",
                    (kf_step,)):
                if connection not in self._connections or not _number(weight) or frozen not in (0, 1):
                    raise self._damaged("keyframe_connections", f"step {kf_step}: connection {_excerpt(connection)},"
                                        f" weight {_excerpt(weight)}, frozen {_excerpt(frozen)}")
                key = self._connections[connection]
                state.weight[key], state.frozen[key] = weight, bool(frozen)
            after = kf_seq
        self._replay(state, after, self._step_ranges[step][1])
        self._cursor = (step, state.copy())
        return state

    def _replay(self, state, after, until):
        """Apply the state-changing events with seq in (after, until] to `state`."""
        codes = self._codes
        weights = {codes.code[p, k] for p, k in (("update", "weight_update"), ("script", "weight_set"))}
        biases = {codes.code[p, k] for p, k in (("update", "bias_update"), ("script", "bias_set"))}
        state_codes = codes.of_kinds(STATE_KINDS)
        rows = self._rows((after + 1, until), set(state_codes))
        connections, neurons = self._connections, self._neurons
        weight, bias = state.weight, state.bias
        for row in rows:
            code = row[2]
            if row[5] is None and (code in weights or code in biases):
                raise self._damaged("events", f"event {row[0]}: an update without its new value")
            if code in weights:
                weight[connections[row[3]]] = row[5]
            elif code in biases:
                bias[neurons[row[3]][0]] = row[5]
            else:
                event = self._event(row)
                try:
                    state.apply(event)
                except KeyError:  # removing what is not there
                    raise self._damaged("events", f"event {row[0]}: {event.kind} of a neuron or connection "
                                        f"the network does not hold") from None

    def network_at(self, step):
        """The Network right after `step` (the first step: as the run started), bit for bit.

        Any step from the first to the last works, recorded as a snapshot or not.

        >>> import tempfile, simnet as sn
        >>> run = tempfile.mkdtemp()
        >>> net = sn.Network.layered([1, 1], seed=0)
        >>> start = net.connections[0].weight
        >>> _ = net.train([[1.0]], [[2.0]], steps=3, lr=0.1, recorder=sn.Recorder(run))
        >>> with sn.open_trace(run) as trace:
        ...     trace.network_at(0).connections[0].weight == start, trace.network_at(3).connections[0].weight == net.connections[0].weight
        (True, True)
        """
        state = self._state_at(step)
        try:
            return state.to_network(seed=self.metadata.get("seed"), init=self.metadata.get("init", "he"), step=step)
        except SimnetError as error:  # what the file says cannot be a network
            raise self._damaged(f"the network after step {step}", str(error)) from None

    @_guard
    def snapshot(self, step):
        """The snapshot DiGraph after `step`, equal to the one a live SnapshotBuilder made."""
        step = self._check_finished(step)
        if step == self.first_step:
            state = self._state_at(step)
            return SnapshotBuilder.graph(step, state, StepData(state.lr))
        builder = SnapshotBuilder.resume(self._state_at(step - 1), {step})
        for event in self._step_events(step, step):
            builder(event)
        return builder.snapshots[step]

    def snapshots(self, steps=None):
        """(step, DiGraph) for each of `steps` (default: ``trace.steps``), in step order.

        Each run of consecutive steps is replayed forward once, from the state
        before it; the steps between runs are not replayed event by event.
        """
        wanted = sorted(set(self.steps if steps is None else (self._check_step(s) for s in steps)))
        for run in _consecutive(wanted):
            if run[0] == self.first_step:
                yield run[0], self.snapshot(run[0])
                run = run[1:]
                if not run:
                    continue
            builder = SnapshotBuilder.resume(self._state_at(run[0] - 1), run)
            given = set()
            for event in self._step_events(run[0], run[-1]):
                builder(event)
                for step, graph in builder.snapshots.items():
                    if step not in given:  # a run's start may be a step built already
                        given.add(step)
                        yield step, graph
                builder.snapshots.clear()

    def _step_events(self, first, last):
        """Events that shape snapshots, as Event objects, for steps first..last, streamed."""
        self._check_finished(last)
        codes = self._codes.of_kinds(SNAPSHOT_KINDS)
        rows = self._rows(self._seq_range(first, last), set(codes))
        return (self._event(row) for row in rows)


def _consecutive(steps):
    """Sorted steps as lists of consecutive ones: [1, 2, 3, 7, 9, 10] -> [1, 2, 3], [7], [9, 10]."""
    run = []
    for step in steps:
        if run and step != run[-1] + 1:
            yield run
            run = []
        run.append(step)
    if run:
        yield run


def _marks(values):
    return ",".join("?" * len(values))


def _excerpt(value, limit=40):
    """`value` as a short repr, to quote what a damaged trace holds without printing all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
