"""Recording a run: :class:`Recorder` subscribes to a network's bus and streams the run into
``DIR/trace.sqlite`` (the schema is :mod:`simnet.trace.schema`), through a writer process.
"""
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from ..core.events import EventBatch
from ..errors import TraceError, positive_int
from ..files import lock_directory, timestamp
from .snapshot import NetworkState, batch_means, mean_rows
from .schema import (APPLICATION_ID, DETAILS, FILENAME, HELD_OUT_TABLE, KEYFRAME_EVERY, KindCodes, LAYOUT, SAMPLE_LIMIT,
                     SCHEMA, SCHEMA_VERSION, STATE_KINDS, STEP_UPSERT, UNUSED, kinds_for)
from .writer import NO_BEAT, WriterError, WriterProcess

__all__ = ["COMMIT_EVERY", "FLUSH_BYTES", "FLUSH_ROWS", "FLUSH_STEPS", "Recorder"]

# commit at the end of a step once this many rows (or batches), steps or bytes of values wait, or once
# COMMIT_EVERY seconds have passed since the last commit, so that readers see a slow run's steps within
# about a second.  Where the commits fall does not change the file: SQLite lays out its pages by the
# order of the rows written, not by transaction, and the rows go out step by step in one order whatever
# the transactions (see Recorder._end_segment).  The bytes bound what a large network holds: its
# updates take megabytes per step.
FLUSH_ROWS = 20_000
FLUSH_STEPS = 100
FLUSH_BYTES = 8 << 20
COMMIT_EVERY = 0.5


def _json(value):
    return json.dumps(value, default=_plain, allow_nan=True)


def _plain(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot store {type(x).__name__} in a trace")


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
    from one whose process died.  Steps are committed at their ends, every
    :data:`FLUSH_STEPS` (sooner when :data:`FLUSH_ROWS` rows or
    :data:`FLUSH_BYTES` of values wait) and whenever :data:`COMMIT_EVERY`
    seconds have passed since the last commit: a reader sees a step within
    about a second.  Where the commits fall leaves the file as it is.

    >>> import tempfile, simnet as sn
    >>> run = tempfile.mkdtemp()
    >>> net = sn.Network.layered([2, 3, 1], seed=0)
    >>> _ = net.train([[0, 1], [1, 0]], [[1], [0]], steps=20, lr=0.1, recorder=sn.Recorder(run, every=5))
    >>> sn.open_trace(run).steps
    [0, 5, 10, 15, 20]
    """

    def __init__(self, directory: str | os.PathLike[str], *, every: int = 1, detail: str = "updates",
                 scenario_text: str | None = None, metadata: Mapping[str, Any] | None = None,
                 samples: bool | None = None, keyframe_every: int = KEYFRAME_EVERY) -> None:
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
        self._held_out = False  # whether the held_out table has been made
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
        started = timestamp(TraceError)  # before the file exists: a bad SOURCE_DATE_EPOCH leaves nothing behind
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
            db.execute("INSERT INTO heartbeat VALUES (?)", (NO_BEAT,))
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
            self._codes = KindCodes(db.execute("SELECT * FROM kinds"))
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
        # the next transaction: (statement, rows) pairs of the segments ended since the last commit
        self._ready = []
        self._steps_waiting = self._rows_waiting = self._bytes_waiting = 0
        self._committed_at = time.monotonic()
        self._first_seq = {}   # step -> first seq seen for it
        self._open_step = None  # [step, first_seq, lr, batch_size, loss, accuracy] while a step runs

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
        """The rows of the segment under way (see _end_segment)."""
        self._rows = []            # events rows, in seq order
        self._batches = []         # batches rows
        self._payloads = []        # (seq, data JSON, samples)
        # fire and message rows wait for the step's end to get their batch means all at once
        self._fire_rows, self._fire_columns = [], ([], [])
        self._message_rows, self._message_columns = [], ([],)
        self._sql = []             # (statement, parameters) for the topology and step tables
        self._segment_bytes = 0    # of values in batches and payloads

    def close(self, reason: str | None = None) -> None:
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
            self._end_run(reason, self._last_done)
        if self._writer is not None or self._ready or self._rows or self._batches or self._sql:
            self._commit()
            writer, self._writer = self._writer, None
            try:
                writer.finish()
            except WriterError as error:
                self._failure = TraceError(f"{self.path}: cannot write the trace: {error}")
                raise self._failure from None

    def held_out(self, evaluation: Any) -> None:
        """Keep a held-out evaluation (`.step`, `.loss`, `.accuracy`, `.confusion`) in the trace's held_out table.

        Written with the steps around it; the table exists only in traces of runs that evaluate one.
        """
        if not self._held_out:
            self._sql.append((HELD_OUT_TABLE, ()))
            self._held_out = True
        confusion = None if evaluation.confusion is None else _json(evaluation.confusion)
        self._sql.append(("INSERT OR REPLACE INTO held_out VALUES (?,?,?,?)",
                          (evaluation.step, evaluation.loss, evaluation.accuracy, confusion)))

    def flush(self) -> None:
        """Hand every step ended so far to the writer now (a live session that pauses), which commits them
        as one transaction: readers then see every whole step so far.  What came after the last step's end
        (script actions before the next step) waits for that step, whose rows it goes with."""
        if self._failure is None and self._ready:
            self._write()

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
        self._segment_bytes += len(vectors)

    def _on_update(self, e):
        # engines send updates in batches (on_batch); single ones come from replayed or hand-made events
        d = e.data
        if e.kind == "weight_update":
            code, key, ids, values = self._weight_code, (e.source, e.target), self._connection_id, self.state.weight
        else:
            code, key, ids, values = self._bias_code, e.neuron, self._neuron_id, self.state.bias
        self._rows.append((e.seq, e.step, code, ids[key], d["old"], d["new"], d["grad"]))
        values[key] = d["new"]

    def on_batch(self, batch: EventBatch) -> None:
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
        self._segment_bytes += vectors.nbytes

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
        self._segment_bytes += 8 * n * len(values)

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
        step, first, lr, batch_size, loss, accuracy = self._open_step
        self._open_step = None
        self._first_seq.pop(step, None)
        self._last_done = step
        self._sql.append((STEP_UPSERT, (step, first, e.seq, lr, batch_size, loss, accuracy, 1)))
        if step % self.keyframe_every == 0:
            self._keyframe(step, e.seq)
        self._end_segment()
        self._steps_waiting += 1
        if (self._rows_waiting >= FLUSH_ROWS or self._steps_waiting >= FLUSH_STEPS
                or self._bytes_waiting >= FLUSH_BYTES or time.monotonic() - self._committed_at >= COMMIT_EVERY):
            self._write()

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
        if self._open_step is not None:  # a diverged step: kept for inspection, never replayed
            step, first, lr, batch_size, loss, accuracy = self._open_step
            self._sql.append((STEP_UPSERT, (step, first, e.seq, lr, batch_size, loss, accuracy, 0)))
            self._open_step = None
        else:
            self._sql.append((STEP_UPSERT, (e.step, self._first_seq.pop(e.step, e.seq), e.seq) + (None,) * 4 + (1,)))
        self._end_run(e.data.get("reason"), e.data.get("steps"))
        self.close()

    def _end_run(self, reason, last_step):
        """The metadata of the run's end: why, after which step, and when."""
        if self._runs:
            self._runs[-1][1] = last_step
        self._set_meta(end_reason=reason, last_step=last_step, end_time=timestamp(TraceError), runs=self._runs)

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

    def _end_segment(self):
        """Queue the rows since the last segment's end (a step's, or a run's announcement) for the next commit.

        SQLite lays out its pages in the order rows are written, whatever the
        transactions: so that the same run gives the same file however its
        commits fall (by rows, bytes, the clock, a pause), a segment's rows
        always go out in one order: its events rows, batches rows, payloads,
        then its topology and step statements as they came.  Rows of one
        statement that follow one another, within a segment or across, go in
        one executemany, which writes them just the same.
        """
        self._fill_means()  # which empties the fire and message rows' lists: they are in self._rows too
        self._rows_waiting += len(self._rows) + len(self._batches)
        self._bytes_waiting += self._segment_bytes
        self._segment_bytes = 0
        ready = self._ready
        for statement, rows in (("INSERT INTO events VALUES (?,?,?,?,?,?,?)", self._rows),
                                ("INSERT INTO batches VALUES (?,?,?,?,?,?,?,?)", self._batches),
                                ("INSERT INTO payloads VALUES (?,?,?)", self._payloads), *self._sql):
            if isinstance(rows, tuple):  # one row's parameters
                rows = [rows]
            if not rows:
                continue
            if ready and ready[-1][0] == statement:
                ready[-1][1].extend(rows)
            else:
                ready.append((statement, rows))  # the list is the transaction's now: the segment's start anew
        self._rows, self._batches, self._payloads, self._sql = [], [], [], []

    def _commit(self):
        """Write everything buffered in one transaction, what came since the last segment's end as one more."""
        self._end_segment()
        self._write()

    def _write(self):
        """Hand the segments ended so far to the writer as one transaction."""
        if self._failure is not None:
            raise self._failure
        if self._writer is None:
            self._open()
        try:
            self._writer.write(self._ready)
        except WriterError as error:
            # what the writer had not committed is lost: writing on after the gap would make a trace
            # whose steps do not follow from one another
            self._writer = None
            self._failure = TraceError(f"{self.path}: cannot write the trace: {error}")
            raise self._failure from None
        self._ready = []
        self._steps_waiting = self._rows_waiting = self._bytes_waiting = 0
        self._committed_at = time.monotonic()


def _version():
    from ..version import __version__
    return __version__


