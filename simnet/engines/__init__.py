"""Engines run a network's forward and backward sweeps and its updates: the actor engine by message
passing between the neuron objects, the fast engine on compiled arrays."""
from .actor import ActorEngine, make_engine, probe
from .fast import FastEngine

__all__ = ["ActorEngine", "FastEngine", "make_engine", "probe"]
