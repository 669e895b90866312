"""The trace's schema: a run recorded into SQLite, its tables, views and event kinds.

:class:`simnet.trace.recorder.Recorder` writes it, :class:`simnet.trace.reader.Trace` reads it.

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
``held_out(step, loss, accuracy, confusion)``
    only in a trace of a run with a held-out test set: its loss, accuracy and
    confusion matrix (JSON, rows = true class) after each evaluated step.
    Created with the first evaluation, so traces of other runs are as before.
``heartbeat(beat)``
    one row: while a run is recorded, the time (float64 seconds since the
    epoch, little endian) and host name (64 bytes, NUL padded) its writer last
    said it was alive, about every :data:`simnet.trace.writer.HEARTBEAT_EVERY`
    seconds, however slow the run; zeros before the first beat and once the
    trace is closed, so that a finished file does not depend on the clock.
``keyframes(step, seq, lr)``, ``keyframe_neurons(step, position, neuron, bias)``,
``keyframe_connections(step, position, connection, weight, frozen)``
    the full state after every ``keyframe_every``-th step and at the start
    of each run, so that replaying any step reads a bounded number of events.
Views with named columns, in seq order, showing batched events one per row
like the others (taken apart in SQL, which needs SQLite's ``pow``):
``event_log``, ``weight_updates``, ``bias_updates``, ``firings``,
``messages``; ``event_rows`` is ``events`` and the expanded ``batches`` as one.

Writes stream: rows are buffered and committed with their steps, at a
step's end once :data:`FLUSH_STEPS` steps wait (fewer when their values
pass :data:`FLUSH_BYTES`) or :data:`COMMIT_EVERY` seconds have passed since
the last commit, so that a reader sees a step within about a second however
slow the run; in WAL mode, by a writer process (:mod:`simnet.trace.writer`),
so that SQLite works on another core while the run goes on; a run killed at
any moment leaves every committed step readable.  The same run writes the
same file, byte for byte, but for its start and end times (unless
``SOURCE_DATE_EPOCH`` fixes them): each step's rows are written in one order
whatever transaction they fall in, and SQLite's pages depend on that order
only, so where the commits fall (by the clock, say) changes nothing.
Values are stored in untyped columns so floats come back bit for bit (-0.0
included).
"""
from ..core.events import KINDS

__all__ = ["APPLICATION_ID", "BATCH_EVENTS_VIEW", "DETAILS", "FILENAME", "HELD_OUT_TABLE", "HEX_DIGITS",
           "KEYFRAME_EVERY", "LAYOUT",
           "SAMPLE_LIMIT", "SCHEMA", "SCHEMA_VERSION", "STATE_KINDS", "STEP_UPSERT", "UNUSED", "KindCodes",
           "kinds_for"]

SCHEMA_VERSION = 3  # 3: the heartbeat table
APPLICATION_ID = 0x736E6574  # "snet"
FILENAME = "trace.sqlite"
DETAILS = ("updates", "messages")
KEYFRAME_EVERY = 100
SAMPLE_LIMIT = 64        # "messages" keeps per-sample vectors for batches up to this size

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
CREATE TABLE heartbeat (beat BLOB NOT NULL);
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

HELD_OUT_TABLE = """CREATE TABLE IF NOT EXISTS held_out (step INTEGER PRIMARY KEY, loss, accuracy, confusion TEXT)"""

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


class KindCodes:
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
