"""Scenario files: TOML read into a typed Scenario (:mod:`.loader`, :mod:`.model`, :mod:`.tables`), its data
sets (:mod:`.datasets`), its script of actions (:mod:`.actions`), and training it with its expectations checked
(:mod:`.running`)."""
from . import datasets
from .loader import load, loads, recorded
from .model import (Action, Checks, ConnectionSpec, DataSpec, Expect, NetworkSpec, NeuronSpec, RecordSpec, Scenario,
                    TrainingSpec)
from .running import CheckResult, Outcome, evaluate, execute
from .sizes import memory_estimate

__all__ = ["Action", "CheckResult", "Checks", "ConnectionSpec", "DataSpec", "Expect", "NetworkSpec", "NeuronSpec",
           "Outcome", "RecordSpec", "Scenario", "TrainingSpec", "datasets", "evaluate", "execute", "load", "loads",
           "memory_estimate", "recorded"]
