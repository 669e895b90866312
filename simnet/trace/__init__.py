"""The record of a run: a Recorder writes its events into SQLite, a Trace reads them back, replays
the network at any step, explains it and exports it to other formats."""
from .snapshot import NetworkState, SnapshotBuilder
from .store import FILENAME, Recorder, Trace, open_trace

__all__ = ["FILENAME", "NetworkState", "Recorder", "SnapshotBuilder", "Trace", "open_trace"]
