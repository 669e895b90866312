"""The trace's writer: a child process that puts a Recorder's rows into SQLite while the run goes on.

SQLite's share of recording a fast-engine run (building pages, the WAL,
checkpoints) costs about as much as the step itself, and a thread cannot
take it over: Python's sqlite3 lets go of the GIL for every row, and each
hand-over stalls the run.  So a :class:`Recorder` prepares its rows and
sends each transaction, pickled, to this process, which writes it on
another core.

The child runs this file as a script (``python -I -S writer.py PATH``): it
needs nothing but the standard library, so it starts in a few tens of
milliseconds, without numpy or simnet.  On its standard input come
messages, pickled one after another: a list of ``(statement, rows)`` pairs
is one transaction (each pair one ``executemany``); ``None`` asks it to
leave the file complete on its own (one plain file when no reader holds it
open) and stop.  About every :data:`HEARTBEAT_EVERY` seconds, with a
transaction or alone when none comes, it writes the time and its host into
the trace's ``heartbeat`` row: readers see there that the run is alive, and
that it is not once the beats stop.  Closing the file puts zeros back.  An
SQLite error is printed on its standard output, one line, and it stops with
status 1.  If its input ends without ``None`` (the run's process died) it
stops at once and keeps only what it has committed, as a crashed writer
would.  A descriptor it inherits holding the lock of the trace's directory
(see :mod:`simnet.files`) stays open until it ends: while it is there, the
trace is being written.
"""
import os
import pickle
import queue
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import weakref

try:
    import fcntl
except ImportError:  # Windows, whose pipes keep their size
    fcntl = None

__all__ = ["BEAT", "CHECKPOINT_WAIT", "ENDED", "HEARTBEAT_EVERY", "LEAVE_WAL_WAIT", "NO_BEAT", "PIPE_SIZE",
           "QUEUED", "Writer", "WriterError", "WriterProcess", "beat", "serve"]

PIPE_SIZE = 1 << 20  # Linux's default limit for a pipe's buffer
QUEUED = 8  # messages taken in but not yet written, at most: a writer behind the run slows it down
# how long the end of a run waits for readers: for one reading an older snapshot to let the checkpoint
# through, then for all to let go so that the file leaves WAL
CHECKPOINT_WAIT = 10.0
LEAVE_WAL_WAIT = 0.5
ENDED = object()  # what the receiving thread passes on when the run's process is gone
HEARTBEAT_EVERY = 1.0  # seconds between the writer's beats
BEAT = struct.Struct("<d64s")  # a beat: seconds since the epoch, host name
NO_BEAT = bytes(BEAT.size)  # before the first beat and after the last
BEAT_STATEMENT = "UPDATE heartbeat SET beat = ?"


def beat():
    """The heartbeat row's value now: the time and this host's name."""
    return BEAT.pack(time.time(), socket.gethostname().encode()[:64])


class WriterError(Exception):
    """The writer could not start, or stopped on an error (the message says which)."""


class Writer:
    """Writes transactions into an existing trace file, in this process."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)
        # WAL: every commit is atomic and a killed writer leaves committed steps readable.  Without
        # syncing, a commit is safe once the operating system has it, which outlives any process; only
        # a crash of the machine itself can damage the file.  Syncing cost the writer two thirds more
        # time per step, and no other output of a run is synced either.
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = OFF")

    def write(self, statements, alive=False):
        """Run the (statement, rows) pairs as one transaction; `alive`: with a heartbeat."""
        db = self.db
        db.execute("BEGIN")
        try:
            for statement, rows in statements:
                db.executemany(statement, rows)
            if alive:
                db.execute(BEAT_STATEMENT, (beat(),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def finish(self):
        """Close the file, which a finished trace leaves complete on its own, as one plain file when it can.

        A checkpoint copies every committed page into the main file: it waits
        (up to :data:`CHECKPOINT_WAIT` seconds) for readers still reading an
        older snapshot, not for idle ones.  Leaving WAL needs the file to
        itself, which an open reader denies however idle; then ``-wal`` (empty)
        and ``-shm`` stay beside a main file that is complete alone.  If a
        reader held its old snapshot through the whole wait, the WAL keeps the
        last pages and SQLite readers still see the whole run.
        """
        self.write([(BEAT_STATEMENT, [(NO_BEAT,)])])  # the same file whenever it beat
        db = self.db
        db.execute(f"PRAGMA busy_timeout = {int(CHECKPOINT_WAIT * 1000)}")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # busy after the wait: the WAL keeps the rest
        db.execute("PRAGMA busy_timeout = 0")
        deadline = time.monotonic() + LEAVE_WAL_WAIT
        while True:
            try:
                db.execute("PRAGMA journal_mode = DELETE").fetchall()
                break
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    break  # a reader holds the file open; the main file alone is complete all the same
                time.sleep(0.02)
        db.close()


def serve(path, source, report):
    """Write what arrives on `source` into the trace at `path`; errors go to `report`. Returns the exit status."""
    arrived = queue.Queue(maxsize=QUEUED)
    # a thread keeps taking the pipe in while SQLite works, so the run never waits on a full pipe
    threading.Thread(target=_receive, args=(source, arrived), daemon=True).start()
    try:
        writer = Writer(path)
        next_beat = time.monotonic()
        while True:
            try:
                message = arrived.get(timeout=max(0.0, next_beat - time.monotonic()))
            except queue.Empty:
                message = []  # nothing came: a beat alone
            if message is ENDED:
                return 0  # the run's process is gone: what is committed stays, like after a crash
            if message is None:
                writer.finish()
                return 0
            alive = time.monotonic() >= next_beat
            writer.write(message, alive)
            if alive:
                next_beat = time.monotonic() + HEARTBEAT_EVERY
    except sqlite3.Error as error:
        report.write(" ".join(str(error).split()) + "\n")
        report.flush()
        return 1


def _receive(source, arrived):
    """Put each message from `source` on `arrived`, then ENDED when the input ends."""
    while True:
        try:
            message = pickle.load(source)
        except Exception:  # the end, or a message cut short by the run's death: never left waiting
            arrived.put(ENDED)
            return
        arrived.put(message)


class WriterProcess:
    """A Writer in a child process, fed through a pipe: the run does not wait for SQLite."""

    def __init__(self, path, lock=None):
        """Start the writer of the file at `path`; `lock`, a descriptor holding the lock that says the
        file is being written (see simnet.files.lock_directory), passes to the writer and is closed here."""
        try:
            self.child = subprocess.Popen([sys.executable, "-I", "-S", __file__, str(path)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          pass_fds=() if lock is None else (lock,))
        except (OSError, ValueError) as error:
            raise WriterError(f"cannot start the trace writer: {error}") from None
        finally:
            if lock is not None:
                # the writer holds the lock from now on, until it ends whichever way it ends
                os.close(lock)
        # a recorder dropped without closing (a run that raised) lets its writer go: the end of
        # its input makes it stop, keeping what it committed
        weakref.finalize(self, _close_quietly, self.child.stdin)
        if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux: a transaction goes in one go, not 64 kB at a time
            try:
                fcntl.fcntl(self.child.stdin, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # above the system's limit: the pipe keeps its size

    def write(self, statements):
        """Hand one transaction over; a writer that has stopped raises WriterError with its reason."""
        try:
            self._send(statements)
        except BrokenPipeError:
            self._stopped()

    def finish(self):
        """Wait until everything handed over is written and the file is closed."""
        try:
            self._send(None)
        except BrokenPipeError:
            pass
        _close_quietly(self.child.stdin)
        if self.child.wait() != 0:
            self._stopped()
        self.child.stdout.close()

    def _send(self, message):
        # pickled straight into the pipe: the blobs of a large network's updates (megabytes a step)
        # go through without being copied into a pickle first
        pickle.dump(message, self.child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.child.stdin.flush()

    def _stopped(self):
        _close_quietly(self.child.stdin)
        self.child.wait()
        reason = self.child.stdout.read().decode(errors="replace").strip() or f"status {self.child.returncode}"
        self.child.stdout.close()
        raise WriterError(f"the trace writer stopped: {reason}")


def _close_quietly(pipe):
    try:
        pipe.close()
    except BrokenPipeError:
        pass  # what was still buffered has nobody to read it


if __name__ == "__main__":
    # Ctrl-C at a terminal (or a SIGTERM to the process group) reaches the writer too; the run stops
    # at a step boundary and then sends what is left, so the writer must outlive the interrupt
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # leave without closing anything: after an end of input the file stays exactly as the crash left it
    os._exit(serve(sys.argv[1], sys.stdin.buffer, sys.stdout))
