"""The record of a run: a Recorder writes its events into SQLite, a Trace reads them back, replays
the network at any step, explains it and exports it to other formats."""
from .snapshot import NetworkState, SnapshotBuilder
from .reader import Trace, open_trace
from .recorder import Recorder
from .schema import FILENAME

__all__ = ["FILENAME", "NetworkState", "Recorder", "SnapshotBuilder", "Trace", "open_trace"]
