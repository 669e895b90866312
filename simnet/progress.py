"""Progress bars for long work: a tqdm bar on a terminal, nothing otherwise."""
from contextlib import contextmanager

__all__ = ["bar", "frame_progress", "step_progress"]


@contextmanager
def bar(show, total, description, unit):
    """A tqdm bar on stderr when `show`, else None.

    >>> with bar(False, 10, "training", "step") as b:
    ...     print(b)
    None
    """
    if not show:
        yield None
        return
    from tqdm import tqdm
    progress = tqdm(total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield progress
    finally:
        progress.close()


def step_progress(progress_bar):
    """A progress(step, loss) callback moving `progress_bar` one step at a time, or None without a bar."""
    if progress_bar is None:
        return None

    def progress(step, loss):
        progress_bar.update(1)
        if step % 25 == 0:
            progress_bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    return progress


def frame_progress(progress_bar):
    """A progress(done, total) callback moving `progress_bar`, or None without a bar."""
    if progress_bar is None:
        return None

    def progress(done, total):
        if progress_bar.total != total:
            progress_bar.total = total
        progress_bar.update(done - progress_bar.n)
    return progress
