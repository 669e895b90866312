"""Engines run a network's forward and backward sweeps and its updates: the actor engine by message
passing between the neuron objects, the fast engine on compiled arrays.  Importing this package
registers both by name (see :mod:`simnet.core.engine`)."""
from ..core.engine import register_engine
from .actor import ActorEngine
from .fast import FastEngine

register_engine(ActorEngine.name, ActorEngine)
register_engine(FastEngine.name, FastEngine)

__all__ = ["ActorEngine", "FastEngine"]
