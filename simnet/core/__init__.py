"""The model: neurons and connections as objects, the events they emit, activations and losses,
optimizers and the trainer.  Nothing here knows how a run is stored or drawn."""
from .events import Event, EventBatch, EventBus, EventLog
from .graph import Connection, Network, Neuron
from .trainer import History, train

__all__ = ["Connection", "Event", "EventBatch", "EventBus", "EventLog", "History", "Network", "Neuron", "train"]
