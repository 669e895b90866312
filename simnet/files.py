"""Files simnet writes: whole or not at all (written beside their name, then renamed), removed only
when they are plain files, and the lock of a directory a run is being recorded into."""
import json
import os
import secrets
import stat
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import SimnetError

try:
    import fcntl
except ImportError:  # Windows: no locks, and a run in progress looks like one that stopped
    fcntl = None

__all__ = ["directory_locked", "json_text", "lock_directory", "partial_name", "remove_regular", "timestamp",
           "write_json", "written_whole"]


@contextmanager
def written_whole(path, temp=None):
    """A temporary path beside `path` (default: `path` + ".part") for the block to write.

    When the block ends well the temporary file becomes `path` in one rename;
    when it raises, the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    temp = path.with_name(path.name + ".part") if temp is None else Path(temp)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def remove_regular(path):
    """Remove `path` if it is a regular file (not a link, not a directory); True if it did.

    Checked at the moment of removing, so that only a file simnet wrote goes,
    never what a link points to or what someone put there meanwhile.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


# A directory being recorded into is locked (flock, exclusive) by the process writing its trace, for
# as long as it writes: the lock goes with that process, however it ends, so a reader can tell a run
# still going from one whose process died without storing anything in the trace that depends on the
# clock or the machine.  The lock is on the directory rather than the trace file because closing any
# descriptor of a file drops the closing process's POSIX locks on it, which are SQLite's own.

def lock_directory(directory, tries=10):
    """A descriptor of `directory` holding its exclusive lock, or None where locks do not exist.

    Raises BlockingIOError if another process holds the lock.  A reader
    checking the lock holds it for an instant: that is waited out.
    """
    if fcntl is None:
        return None
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if attempt == tries - 1:
                os.close(fd)
                raise
            time.sleep(0.01)


def directory_locked(directory):
    """True if a process holds `directory`'s lock (see :func:`lock_directory`): it is being recorded into."""
    if fcntl is None:
        return False
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def partial_name(path: str | os.PathLike, what: str) -> Path:
    """An unused hidden name next to `path`: .<stem>.<what>-<random><suffix>, as a later run recognises.

    >>> partial_name(Path("run/loss.png"), "partial").name.startswith(".loss.partial-")
    True
    """
    path = Path(path)
    return path.parent / f".{path.stem}.{what}-{secrets.token_hex(4)}{path.suffix}"


def json_text(value):
    """`value` as the JSON text simnet writes: indented, strict (no NaN), ending with a newline.

    >>> json_text({"steps": 3})
    '{\\n  "steps": 3\\n}\\n'
    """
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def write_json(path, value):
    """Write `value` to `path` as :func:`json_text`, whole or not at all."""
    with written_whole(path) as temp:
        temp.write_text(json_text(value))


def timestamp(error=SimnetError):
    """The time to record, in UTC: now, or SOURCE_DATE_EPOCH's (seconds) when set, as in reproducible builds.

    A SOURCE_DATE_EPOCH that is not a whole number of seconds raises `error`.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        return datetime.fromtimestamp(int(epoch), timezone.utc).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        raise error(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, got {epoch!r}") from None
