"""Experiments: sweeps of a scenario over a grid of settings and seeds (:mod:`.sweep`, on local processes or
Dask, :mod:`.backends`), and comparing runs (:mod:`.compare`)."""
from .compare import Comparison, compare
from .plan import plan
from .sweep import SweepResult, sweep

__all__ = ["Comparison", "SweepResult", "compare", "plan", "sweep"]
