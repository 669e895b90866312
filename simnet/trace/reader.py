"""Reading a trace: :func:`open_trace` opens ``trace.sqlite`` read-only as a :class:`Trace`, which
answers "what happened at step 412 in neuron h2" and rebuilds the network as it was after any step.

A trace is someone's file: every row a query reads is checked, and what simnet never writes is a
one-line TraceError naming the table, never a wrong answer.
"""
import bisect
import heapq
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from ..core.events import KINDS, Event
from ..core.graph import ROLES, Network
from ..errors import SimnetError, TraceError, excerpt
from ..files import directory_locked
from .schema import APPLICATION_ID, DETAILS, FILENAME, LAYOUT, SCHEMA_VERSION, STATE_KINDS, KindCodes
from .snapshot import SNAPSHOT_KINDS, NetworkState, SnapshotBuilder, StepData
from .writer import BEAT, HEARTBEAT_EVERY, NO_BEAT

__all__ = ["INLINE_PAGE_BUDGET", "META_CHECKS", "STALE_AFTER", "Trace", "open_trace"]


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


def open_trace(path: str | os.PathLike[str]) -> "Trace":
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


INLINE_PAGE_BUDGET = 3 * 2**20  # a notebook keeps its outputs in the file: the inline replay page stays small
# seconds without a heartbeat after which a run without an end is taken for dead: many beats missed, so that
# a writer kept waiting by a busy machine is not
STALE_AFTER = 10 * HEARTBEAT_EVERY


class Trace:
    """A recorded run, read-only: events, snapshots, exact replay of the network at any step.

    Attributes: ``path``, ``metadata`` (dict), ``detail``, ``every``,
    ``first_step`` (the state the recording starts from), ``last_step`` (last
    step written whole), ``complete`` (the run ended and said so),
    ``end_reason`` (complete, interrupted, diverged, failed or None), ``steps``
    (the snapshot steps: the start, every ``every``-th, the ends of runs),
    ``heartbeat`` (when the writer of a run without an end last said it was
    alive, seconds since the epoch, or None), ``running`` (its run is still
    being recorded), ``status`` (all that in words), each as of the moment
    the trace was opened.
    """

    def __init__(self, path: str | os.PathLike[str], db: sqlite3.Connection) -> None:
        self.path, self._db = Path(path), db
        self._closed = False
        # before the file is read: a run that ends meanwhile (its end written, then its lock let go)
        # is never taken for one whose process died
        self._locked = self.path.name == FILENAME and directory_locked(self.path.parent)
        self._load()
        self._opened_at = time.time()

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
        self.heartbeat, self._beat_host = self._read_heartbeat() if version >= 3 else (None, None)
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
                raise self._damaged(f"meta {key!r}", f"not JSON: {excerpt(value)}") from None
        for key, (check, what) in META_CHECKS.items():
            if key in metadata and not check(metadata[key]):
                raise self._damaged(f"meta {key!r}", f"must be {what}, got {excerpt(metadata[key])}")
        return metadata

    def _read_heartbeat(self):
        rows = self._db.execute("SELECT beat FROM heartbeat").fetchall()
        if len(rows) != 1 or not isinstance(rows[0][0], bytes) or len(rows[0][0]) != BEAT.size:
            raise self._damaged("heartbeat", f"must be one row of {BEAT.size} bytes, got {excerpt(rows)}")
        if rows[0][0] == NO_BEAT:
            return None, None
        when, host = BEAT.unpack(rows[0][0])
        if not math.isfinite(when) or when <= 0:
            raise self._damaged("heartbeat", f"{excerpt(when)} is not a time")
        return when, host.rstrip(b"\0").decode(errors="replace")

    def _read_kinds(self):
        rows = self._db.execute("SELECT code, phase, kind, subject, v1, v2, v3 FROM kinds").fetchall()
        for code, phase, kind, subject, *fields in rows:
            if (type(code) is not int or not isinstance(phase, str) or not isinstance(kind, str)
                    or subject not in (None, "neuron", "connection")
                    or not all(f is None or isinstance(f, str) for f in fields)):
                raise self._damaged("kinds", f"code {excerpt(code)} is not a kind: "
                                    f"{excerpt((phase, kind, subject, *fields))}")
        codes = KindCodes(rows)
        for phase, kind, subject, fields in LAYOUT:  # what the reader decodes by these names
            code = codes.code.get((phase, kind))
            if code is None or codes.layout[code][2:] != (subject, fields):
                raise self._damaged("kinds", f"the {phase} {kind} kind is missing or changed")
        return codes

    def _read_neurons(self):
        neurons = {}
        for i, name, role, fn in self._db.execute("SELECT id, name, role, activation FROM neurons"):
            # an activation is a name here; whether this process knows it matters once a network is rebuilt
            if type(i) is not int or not isinstance(name, str) or role not in ROLES or not (
                    isinstance(fn, str) and fn.isidentifier()):
                raise self._damaged("neurons", f"row {excerpt(i)} is not a neuron: {excerpt((name, role, fn))}")
            neurons[i] = (name, role, fn)
        return neurons

    def _read_connections(self):
        names = {name for name, _, _ in self._neurons.values()}
        connections = {}
        for i, source, target in self._db.execute("SELECT id, source, target FROM connections"):
            if type(i) is not int or source not in names or target not in names:
                raise self._damaged("connections", f"row {excerpt(i)} does not join two neurons: "
                                    f"{excerpt((source, target))}")
            connections[i] = (source, target)
        return connections

    def _read_steps(self):
        ranges, previous = {}, None
        for step, first, last, done, *numbers in self._db.execute(
                "SELECT step, first_seq, last_seq, done, lr, batch_size, loss, accuracy FROM steps ORDER BY step"):
            if not (_step_number(step) and type(first) is int and type(last) is int and first <= last
                    and done in (0, 1) and all(v is None or _number(v) for v in numbers)):
                raise self._damaged("steps", f"step {excerpt(step)} is not a step: "
                                    f"{excerpt((first, last, done, *numbers))}")
            if previous is not None and step != previous + 1:
                raise self._damaged("steps", f"step {step} follows step {previous}; steps go one by one")
            ranges[step], previous = (first, last, done), step
        return ranges

    def _read_keyframes(self):
        keyframes = self._db.execute("SELECT step, seq, lr FROM keyframes ORDER BY step").fetchall()
        for step, seq, lr in keyframes:
            if step not in self._step_ranges or type(seq) is not int or not (lr is None or _number(lr)):
                raise self._damaged("keyframes", f"step {excerpt(step)} is not a keyframe of a recorded step: "
                                    f"{excerpt((seq, lr))}")
        return keyframes

    def __repr__(self):
        return f"Trace({str(self.path)!r}, steps {self.first_step}..{self.last_step}, {self.status})"

    def _repr_png_(self):
        from ..viz.render import trace_png  # matplotlib loads only when a notebook asks for the picture
        return trace_png(self)

    def _repr_html_(self):
        """The replay page, inline: in a sandboxed frame of its own, so that its script and styles stay in it."""
        import html
        from ..viz.page import render_page
        page = render_page(self, budget=INLINE_PAGE_BUDGET)
        return (f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
                'style="width: 100%; height: 760px; border: 1px solid #ddd" '
                f'title="replay of {html.escape(str(self.path))}"></iframe>')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Close the file; the Trace reads nothing after this."""
        self._db.close()
        self._closed = True

    @property
    def running(self):
        """True while the process recording this trace was still at it when the trace was opened.

        A run without an end is running while its writer beats (within
        :data:`STALE_AFTER` seconds) and, on this host, holds the lock of the
        run's directory: a process that dies lets go of it at once.  Before
        the first beat, the lock alone tells.
        """
        if self.end_reason is not None:
            return False
        if self.heartbeat is None:
            return self._locked
        if self._beat_host == socket.gethostname() and not self._locked:
            return False
        return self._opened_at - self.heartbeat <= STALE_AFTER

    @property
    def status(self):
        """In words: complete, interrupted, diverged, failed, running, or where an incomplete run stopped.

        A run without an end is running while the process recording it is
        alive (see :attr:`running`), and incomplete once it is gone.
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
    def events(self, step: int | None = None, kind: str | Iterable[str] | None = None, neuron: str | None = None,
               connection: str | tuple[str, str] | None = None, steps: tuple[int, int] | None = None,
               phase: str | None = None) -> Iterator[dict[str, Any]]:
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
                raise self._damaged("events", f"event {seq}: unknown kind code {excerpt(code)}")
            subjects = known[kind[2]]
            if (type(step) is not int or not all(v is None or _number(v) for v in values)
                    or (subjects is not None and subject is not None and subject not in subjects)
                    or (subject is None and subjects is not None and kind[1] in STATE_KINDS)):
                raise self._damaged("events", f"event {seq} ({kind[1]}) is not one simnet records: "
                                    f"{excerpt((step, subject, *values))}")
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
                                    f"{excerpt([None if b is None else len(b) for b in blobs])} bytes")
            columns = [repeat(None) if b is None else np.frombuffer(b, dtype="<f8").tolist() for b in blobs]
            kept = subjects[code] if subjects is not None else None
            for at, (subject, v1, v2, v3) in enumerate(zip(ids, *columns), start=seq):
                if first <= at <= last and (kept is None or subject in kept):
                    yield at, step, code, subject, v1, v2, v3, None, None

    def _batch_subjects(self, seq, last_seq, step, code, listed):
        """The subject ids of the batch `seq` (a list as long as the batch), checked; TraceError if they are not."""
        kind = self._codes.layout.get(code)
        if kind is None or kind[2] is None:
            raise self._damaged("batches", f"batch {seq}: kind code {excerpt(code)} is not a kind about subjects")
        if type(last_seq) is not int or last_seq < seq or type(step) is not int:
            raise self._damaged("batches", f"batch {seq}: last_seq {excerpt(last_seq)}, step {excerpt(step)}")
        ids = self._subject_lists.get(listed)
        if ids is None:
            row = self._db.execute("SELECT subjects FROM subject_lists WHERE id = ?", (listed,)).fetchone()
            if row is None or type(row[0]) is not bytes or len(row[0]) % 8:
                raise self._damaged("subject_lists", f"batch {seq}: its list {excerpt(listed)} is "
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
                raise self._damaged("events", f"event {seq}: batch size {excerpt(size)}")
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
            raise self._damaged("payloads", f"event {seq}: data is not a JSON object: {excerpt(data)}")
        return value

    @_guard
    def history(self) -> dict[str, np.ndarray]:
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
    def held_out(self) -> dict[str, Any]:
        """The held-out set's loss, accuracy (NaN where none) and confusion matrices after each evaluated step.

        Empty arrays for a run without a held-out set.
        """
        exists = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'held_out'").fetchone()
        rows = self._db.execute("SELECT step, loss, accuracy, confusion FROM held_out ORDER BY step").fetchall() \
            if exists else []
        if not all(_step_number(r[0]) and all(v is None or _number(v) for v in r[1:3]) for r in rows):
            raise self._damaged("held_out", "a step's loss or accuracy is not a number")
        try:
            confusion = [None if r[3] is None else np.array(json.loads(r[3]), dtype=np.int64) for r in rows]
        except (TypeError, ValueError):
            raise self._damaged("held_out", "a confusion matrix is not a table of counts") from None
        return {"step": np.array([r[0] for r in rows], dtype=np.int64),
                "loss": np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64),
                "accuracy": np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
                "confusion": confusion}

    @_guard
    def event_counts(self) -> dict[str, int]:
        """How many events of each kind the trace holds: {kind: count}."""
        counts = {}
        sql = "SELECT 'events', kind, count(*), 1 FROM events GROUP BY kind"
        if self._has_batches:  # a batch counts its seqs: they must be in order, within the recorded steps
            sql += (" UNION ALL SELECT 'batches', kind, sum(last_seq - seq + 1), min(typeof(last_seq) = 'integer'"
                    " AND last_seq >= seq AND last_seq <= (SELECT max(last_seq) FROM steps)) FROM batches GROUP BY kind")
        for table, code, n, fits in self._db.execute(sql):
            if code not in self._codes.layout:
                raise self._damaged(table, f"unknown kind code {excerpt(code)}")
            if not fits:
                raise self._damaged(table, f"a batch of {self._codes.layout[code][1]} events ends before it "
                                    f"begins or after the last recorded step")
            kind = self._codes.layout[code][1]
            counts[kind] = counts.get(kind, 0) + n
        return counts

    def actions(self) -> list[dict[str, Any]]:
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
                    raise self._damaged("keyframe_neurons", f"step {kf_step}: neuron {excerpt(neuron)}, "
                                        f"bias {excerpt(bias)}")
                name, role, fn = self._neurons[neuron]
                state.kind[name], state.bias[name] = (role, fn), bias
            for connection, weight, frozen in db.execute(
                    "SELECT connection, weight, frozen FROM keyframe_connections WHERE step = ? ORDER BY position",
                    (kf_step,)):
                if connection not in self._connections or not _number(weight) or frozen not in (0, 1):
                    raise self._damaged("keyframe_connections", f"step {kf_step}: connection {excerpt(connection)},"
                                        f" weight {excerpt(weight)}, frozen {excerpt(frozen)}")
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

    def network_at(self, step: int) -> Network:
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
        except TraceError as error:  # an activation this process does not know: the file is fine
            raise TraceError(f"{self.path}: {error}") from None
        except SimnetError as error:  # what the file says cannot be a network
            raise self._damaged(f"the network after step {step}", str(error)) from None

    @_guard
    def snapshot(self, step: int) -> nx.DiGraph:
        """The snapshot DiGraph after `step`, equal to the one a live SnapshotBuilder made."""
        step = self._check_finished(step)
        if step == self.first_step:
            state = self._state_at(step)
            return SnapshotBuilder.graph(step, state, StepData(state.lr))
        builder = SnapshotBuilder.resume(self._state_at(step - 1), {step})
        for event in self._step_events(step, step):
            builder(event)
        return builder.snapshots[step]

    def snapshots(self, steps: Iterable[int] | None = None) -> Iterator[tuple[int, nx.DiGraph]]:
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
            given, made = set(), {}
            for event in self._step_events(run[0], run[-1]):
                if event.kind == "step_begin":  # what came before is final: a run's end may still redo its last
                    yield from _new(made, given)
                builder(event)
                made.update(builder.snapshots)
                builder.snapshots.clear()
            yield from _new(made, given)

    def _step_events(self, first, last):
        """Events that shape snapshots, as Event objects, for steps first..last, streamed."""
        self._check_finished(last)
        codes = self._codes.of_kinds(SNAPSHOT_KINDS)
        rows = self._rows(self._seq_range(first, last), set(codes))
        return (self._event(row) for row in rows)


def _new(made, given):
    """(step, graph) of the snapshots in `made` not in `given` yet (a run's start may be a step built already),
    in step order; `made` is emptied and `given` told."""
    for step in sorted(made):
        if step not in given:
            given.add(step)
            yield step, made[step]
    made.clear()


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

