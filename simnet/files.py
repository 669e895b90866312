"""Files that appear whole or not at all: written beside their name, then renamed."""
import os
from contextlib import contextmanager
from pathlib import Path


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
