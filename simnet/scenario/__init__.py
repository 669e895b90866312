"""Scenario files: TOML read into a typed Scenario, its data sets, its script of actions, and
training it with its expectations checked."""
from .loader import Outcome, Scenario, execute, load, loads

__all__ = ["Outcome", "Scenario", "execute", "load", "loads"]
