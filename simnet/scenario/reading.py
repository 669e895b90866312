"""Reading the files a user hands simnet (scenarios, CSV data) with a bound on what is read.

A file's reported size is not trusted: a symlink to ``/dev/zero``, a file in
``/proc`` or one still growing says nothing true about how much reading it
gives.  So only regular files are read, opened without blocking (a FIFO with
no writer would otherwise wait for one forever), and at most one byte more
than the limit is read, which is how a file that is too big is recognised.
"""
import errno
import os
import stat

from ..errors import ScenarioError, excerpt

__all__ = ["confined", "read_bounded"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
_CHUNK = 1 << 20


def read_bounded(path, limit, what, *, error=ScenarioError, too_big=None):
    """The bytes of the regular file at `path`, at most `limit` of them.

    `what` names the kind of file in messages ("a scenario file"); `error(path,
    "file", why)` is raised for a file that is missing, unreadable, not a
    regular file or longer than `limit` bytes (`too_big(size)` then says why,
    `size` being the reported size or None when only the reading found out).
    """
    def refuse(why):
        return error(path, "file", why)

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise refuse("does not exist") from None
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise refuse(f"is a directory; expected {what}") from None
        raise refuse(f"cannot be read: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise refuse(f"is {kind}; expected {what}")
        if info.st_size > limit:
            raise refuse(_too_big(what, limit, info.st_size, too_big))
        parts, size = [], 0
        while size <= limit:
            part = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        if size > limit:
            raise refuse(_too_big(what, limit, None, too_big))
        return b"".join(parts)
    except OSError as e:
        raise refuse(f"cannot be read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _too_big(what, limit, size, explain):
    if explain is not None:
        return explain(size)
    found = f"is {size:,} bytes" if size is not None else f"is more than {limit:,} bytes"
    return f"{found}; {what} is at most {limit:,} bytes"


def confined(scenario_path, data_path):
    """ScenarioError unless `data_path`, symlinks followed, lies in the directory of the scenario file.

    A scenario is data someone may hand over; it reads its own directory's files, not the reader's others.
    """
    home = scenario_path.parent.resolve()
    try:
        target = data_path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ScenarioError(scenario_path, "data.path", f"cannot be followed: {e}") from None
    if not target.is_relative_to(home):
        given = os.path.relpath(data_path, scenario_path.parent)
        raise ScenarioError(scenario_path, "data.path", f"{excerpt(given, 80)} leads outside the "
                            f"scenario's directory (to {excerpt(str(target), 80)}); a scenario reads data from "
                            "its own directory only: put the CSV file beside it")
