"""Where a sweep's runs run: local worker processes (standard library only) or a Dask cluster.

A backend takes tasks (plain data, see :mod:`.worker`) and yields
``(task, result)`` as runs finish, in any order; a result is what
:func:`~simnet.experiments.worker.run_task` returns, or ``{"died": why}``
when the process running it died.  It stops handing out tasks once
``stopping()`` says so, and yields the runs already under way.
"""
import multiprocessing
import os
import signal
from multiprocessing.connection import wait

from ..errors import InputError
from .worker import run_task

__all__ = ["DaskWorkers", "LocalWorkers", "default_workers", "dask_client"]


def default_workers():
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _serve(connection):
    """A worker process: run each task received on `connection`, send back its result, until told None."""
    # out of the terminal's process group: Ctrl-C is the coordinator's, which stops at run boundaries
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            task = connection.recv()
        except EOFError:  # the coordinator is gone
            return
        if task is None:
            return
        connection.send(run_task(task))


class LocalWorkers:
    """`count` worker processes on this machine, each running one task at a time.

    Every run knows its process, so a process that dies marks exactly the
    run it held; a new process takes its place.
    """

    def __init__(self, count):
        self.count = count
        self.context = multiprocessing.get_context("spawn")  # no threads or locks inherited mid-use
        self.shares_files = True

    def _start(self):
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(theirs,), daemon=True)
        process.start()
        theirs.close()
        return process, ours

    def run(self, tasks, stopping):
        """Yield (task, result) for `tasks` (an iterator) as they finish; see the module's doc."""
        tasks = iter(tasks)
        idle = [self._start() for _ in range(self.count)]
        busy = {}  # connection -> (process, task)
        exhausted = False
        try:
            while True:
                while idle and not exhausted and not stopping():
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    process, connection = idle.pop()
                    connection.send(task)
                    busy[connection] = (process, task)
                if not busy:
                    return
                ready = set(wait(list(busy) + [p.sentinel for p, _ in busy.values()], timeout=0.5))
                for connection, (process, task) in list(busy.items()):
                    result = None
                    if connection in ready or process.sentinel in ready:
                        try:
                            if connection.poll():
                                result = connection.recv()
                        except (EOFError, OSError):
                            pass
                        if result is None and process.sentinel in ready:
                            process.join()
                            result = {"died": _death(process.exitcode)}
                    if result is None:
                        continue
                    del busy[connection]
                    if "died" in result:
                        connection.close()
                        idle.append(self._start())
                    else:
                        idle.append((process, connection))
                    yield task, result
        finally:
            for process, connection in idle + [(p, c) for c, (p, _) in busy.items()]:
                try:
                    connection.send(None)
                except OSError:
                    pass
            for process, connection in idle + [(p, c) for c, (p, _) in busy.items()]:
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()
                    process.join()
                connection.close()


def _death(exitcode):
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker process was killed by {name}"
    return f"its worker process exited with code {exitcode}"


def dask_client(address, workers):
    """A dask.distributed Client: of a new LocalCluster of `workers` processes for "local", else of the
    scheduler at `address`.  InputError saying what to install when Dask is not installed."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--dask", address, "needs Dask: pip install 'simnet[dask]'") from None
    if address == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        return Client(cluster)
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError("--dask", address, f"cannot reach the scheduler: {' '.join(str(e).split())}") from None


class DaskWorkers:
    """The workers of a dask.distributed `client`; at most two tasks per worker are queued at a time,
    so that stopping is quick and the coordinator holds few results."""

    def __init__(self, client):
        self.client = client
        self.shares_files = False

    def run(self, tasks, stopping):
        """Yield (task, result) for `tasks` (an iterator) as they finish; see the module's doc."""
        from distributed import as_completed
        tasks = iter(tasks)
        limit = 2 * max(1, len(self.client.scheduler_info().get("workers", {})))
        pending = as_completed()
        held = {}  # future's key -> (future, task) of the runs under way
        exhausted = False

        def submit():
            nonlocal exhausted
            while len(held) < limit and not exhausted and not stopping():
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    return
                # pure=False: the same task is a new run each time, never a cached result
                future = self.client.submit(run_task, task, pure=False)
                held[future.key] = (future, task)
                pending.add(future)

        try:
            submit()
            while held:
                future = next(pending)
                _, task = held.pop(future.key)
                try:
                    result = future.result()
                except Exception as e:  # the worker died (KilledWorker) or the cluster went away
                    result = {"died": f"its Dask worker failed: {type(e).__name__}: "
                                      f"{' '.join(str(e).split())}"[:300]}
                future.release()
                yield task, result
                submit()
        finally:
            for future, _ in held.values():  # abandoned: no result is wanted any more
                future.cancel()
