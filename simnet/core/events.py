"""The event schema and the bus that carries events to subscribers.

Everything that happens in a network is an :class:`Event`.  Engines, the
trainer and the network's own mutators emit them on ``net.bus``; recorders
(the SQLite trace, snapshot builders, progress bars) subscribe.  Nothing that
emits knows who listens, and when nobody does, no event object is built.

Every event has ``seq`` (position in the run, from 0), ``step`` (the weight
update it belongs to: step k's script actions, sweeps and updates all carry
k; the state a run starts from carries the step it starts at), ``phase`` and
``kind``.  ``neuron`` names the neuron an event is about; ``source`` and
``target`` name the endpoints of the connection it is about.  ``data`` holds
the numbers; vectors hold one value per sample of the batch.

======  =================  =====================  ===========================================
phase   kind               subject                data
======  =================  =====================  ===========================================
init    run_begin          -                      seed, loss, optimizer, lr, batch_size,
                                                  samples, engine, l1, l2
init    neuron_added       neuron                 role, activation, bias
init    connection_added   source, target         weight, frozen
script  action             -                      action, label, params (a scripted action,
                                                  followed by the events it causes)
script  neuron_added       neuron                 role, activation, bias
script  neuron_removed     neuron                 -
script  connection_added   source, target         weight, frozen
script  connection_removed source, target         weight
script  weight_set         source, target         old, new
script  bias_set           neuron                 old, new
script  frozen/unfrozen    source, target         -
script  learning_rate_set  -                      old, new
step    step_begin         -                      batch_size, lr
forward fire               neuron                 z, a (vectors); a neuron fired forward
forward message            source, target         value = a_source * w (vector)
loss    loss               -                      loss, accuracy (None for regression)
backward fire              neuron                 dL_da, dL_dz (vectors)
backward message           source, target         value = dL/dz_target * w (vector), sent
                                                  from target back to source
update  weight_update      source, target         old, new, delta, grad (grad includes L1/L2)
update  bias_update        neuron                 old, new, delta, grad
step    step_end           -                      loss, accuracy
end     run_end            -                      steps (last completed), reason: complete,
                                                  diverged (with step, where, quantity)
                                                  or interrupted
======  =================  =====================  ===========================================

Mutations outside a scripted action (a user calling ``net.connect`` between
two ``train`` calls) carry phase ``script`` too: they happen before the next
step.  Forward events come in firing order, backward events in the order the
backward sweep fires, so a recorded run can be replayed message by message.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, TypeVar

from numpy.typing import ArrayLike

__all__ = ["KINDS", "PHASES", "Event", "EventBatch", "EventBus", "EventLog"]

PHASES = ("init", "script", "step", "forward", "loss", "backward", "update", "end")
KINDS = (
    "run_begin", "neuron_added", "neuron_removed", "connection_added", "connection_removed",
    "weight_set", "bias_set", "frozen", "unfrozen", "learning_rate_set", "action",
    "step_begin", "fire", "message", "loss", "weight_update", "bias_update", "step_end", "run_end",
)

# a subscriber: called with each Event; `subscribe` hands back the very object it was given
_Subscriber = TypeVar("_Subscriber", bound=Callable[["Event"], object])


class Event:
    """One thing that happened; also readable as a mapping of its fields."""

    __slots__ = ("seq", "step", "phase", "kind", "neuron", "source", "target", "data")
    FIELDS = __slots__

    def __init__(self, seq: int, step: int, phase: str, kind: str, neuron: str | None = None,
                 source: str | None = None, target: str | None = None, data: dict[str, Any] | None = None) -> None:
        self.seq, self.step, self.phase, self.kind = seq, step, phase, kind
        self.neuron, self.source, self.target = neuron, source, target
        self.data = data if data is not None else {}

    def __getitem__(self, key):
        if key in self.FIELDS:
            return getattr(self, key)
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def as_dict(self) -> dict[str, Any]:
        """The event flattened into one dict: the fields, then the data."""
        out = {f: getattr(self, f) for f in self.FIELDS[:-1]}
        out.update(self.data)
        return out

    def __repr__(self):
        subject = self.neuron or (f"{self.source}->{self.target}" if self.source else "")
        return f"Event({self.seq}, step={self.step}, {self.phase}/{self.kind} {subject} {self.data})"


class EventBatch:
    """Many events of one step, phase and kind, held as columns.

    Engines that compute a whole phase at once (the fast engine), and the
    trainer announcing a network's connections, emit a batch instead of one
    event at a time; iterating it gives the same events, with
    consecutive ``seq`` numbers, that one-at-a-time emission would have given.
    ``neurons``, ``sources`` and ``targets`` are sequences of names (or None);
    each entry of ``data`` is an array with one row per event, or a function
    of no arguments that returns one: it is called the first time the batch's
    ``data`` is read, so that a subscriber that only keeps the batch (an
    :class:`EventLog`) does not pay for numbers it may never look at.  A
    batch takes its length from its names, or from its data when it has none.
    """

    __slots__ = ("seq", "step", "phase", "kind", "neurons", "sources", "targets", "_data", "_deferred", "_count")

    def __init__(self, seq, step, phase, kind, neurons=None, sources=None, targets=None, data=None):
        self.seq, self.step, self.phase, self.kind = seq, step, phase, kind
        self.neurons, self.sources, self.targets = neurons, sources, targets
        self._data = data or {}
        self._deferred = any(map(callable, self._data.values()))
        names = neurons if neurons is not None else sources
        self._count = len(names) if names is not None else next((len(column) for column in self.data.values()), 0)

    @property
    def data(self):
        """The columns by field name, each an array with one row per event (computed now if deferred)."""
        if self._deferred:
            self._data = {name: column() if callable(column) else column for name, column in self._data.items()}
            self._deferred = False
        return self._data

    def __len__(self):
        return self._count

    def __iter__(self):
        count = len(self)
        names = list(self.data)
        columns = [_rows(self.data[name]) for name in names]
        subjects = [repeat(None, count) if column is None else column
                    for column in (self.neurons, self.sources, self.targets)]
        step, phase, kind = self.step, self.phase, self.kind
        for seq, neuron, source, target, *values in zip(range(self.seq, self.seq + count), *subjects, *columns):
            yield Event(seq, step, phase, kind, neuron, source, target, dict(zip(names, values)))


def _rows(column):
    """A column's entries, one per event; scalars leave as Python floats, like the ones single events carry."""
    if getattr(column, "ndim", None) == 1:
        return column.tolist()
    if getattr(column, "ndim", None):
        return list(column)
    return [x.item() if getattr(x, "ndim", None) == 0 else x for x in column]


class EventBus:
    """Delivers events to subscribers, in order, numbering them as they go.

    A subscriber is any callable taking one :class:`Event`; it may also have
    an ``on_batch(batch)`` method to take an :class:`EventBatch` whole.  It can
    subscribe to some kinds only.  The bus is falsy while nobody listens, and
    ``wants(kind)`` says whether anyone listens to a kind, so emitters can skip
    building events nobody hears.
    """

    def __init__(self) -> None:
        self.subscribers = []  # (subscriber, kinds or None for all)
        self.seq = 0
        self._wanted = frozenset()
        self._everything = False

    def subscribe(self, subscriber: _Subscriber, kinds: Iterable[str] | None = None) -> _Subscriber:
        """Add `subscriber` for `kinds` (all kinds if None); returns it, for `unsubscribe`.

        `subscriber` is called with each :class:`Event` of those kinds as it is
        emitted; one that has an ``on_batch`` method gets an :class:`EventBatch`
        whole where an engine emits many events at once, and others get them one
        by one.

        >>> import simnet as sn
        >>> net = sn.Network.layered([1, 1], seed=0)
        >>> losses = []
        >>> _ = net.bus.subscribe(lambda e: losses.append(e.data["loss"]), kinds=["step_end"])
        >>> _ = net.train([[1.0]], [[2.0]], steps=3, lr=0.1)
        >>> len(losses)
        3
        """
        if kinds is not None:
            unknown = set(kinds) - set(KINDS)
            if unknown:
                raise ValueError(f"unknown event kinds {sorted(unknown)}")
            kinds = frozenset(kinds)
        self.subscribers.append((subscriber, kinds))
        self._refresh()
        return subscriber

    def unsubscribe(self, subscriber: Callable[[Event], object]) -> None:
        self.subscribers = [(s, k) for s, k in self.subscribers if s is not subscriber]
        self._refresh()

    def _refresh(self):
        self._everything = any(kinds is None for _, kinds in self.subscribers)
        self._wanted = frozenset().union(*(kinds for _, kinds in self.subscribers if kinds is not None))

    def __bool__(self):
        return bool(self.subscribers)

    def wants(self, kind: str) -> bool:
        """True if some subscriber listens to events of `kind`."""
        return self._everything or kind in self._wanted

    def emit(self, step: int, phase: str, kind: str, neuron: str | None = None, source: str | None = None,
             target: str | None = None, data: dict[str, Any] | None = None) -> Event:
        """Build the event and hand it to every subscriber of its kind; returns it."""
        event = Event(self.seq, step, phase, kind, neuron, source, target, data)
        self.seq += 1
        for subscriber, kinds in self.subscribers:
            if kinds is None or kind in kinds:
                subscriber(event)
        return event

    def emit_batch(self, step: int, phase: str, kind: str, neurons: Sequence[str] | None = None,
                   sources: Sequence[str] | None = None, targets: Sequence[str] | None = None,
                   data: dict[str, ArrayLike | Callable[[], ArrayLike]] | None = None) -> EventBatch:
        """Emit many events of one kind at once (see :class:`EventBatch`); returns the batch."""
        batch = EventBatch(self.seq, step, phase, kind, neurons, sources, targets, data)
        self.seq += len(batch)
        for subscriber, kinds in self.subscribers:
            if kinds is None or kind in kinds:
                on_batch = getattr(subscriber, "on_batch", None)
                if on_batch is not None:
                    on_batch(batch)
                else:
                    for event in batch:
                        subscriber(event)
        return batch


class EventLog:
    """A subscriber that keeps every event in a list (for tests and small runs).

    Batches are kept whole as they come and turned into events the first time
    ``events`` is read after them (their deferred numbers, such as the values
    of messages, computed then), so keeping a run costs little until it is read.
    """

    def __init__(self) -> None:
        self._events = []
        self._unread = []  # events and batches that came after the last reading

    def __call__(self, event):
        self._unread.append(event)

    def on_batch(self, batch: EventBatch) -> None:
        self._unread.append(batch)

    @property
    def events(self):
        """Every event so far, in order."""
        for item in self._unread:
            if isinstance(item, EventBatch):
                self._events.extend(item)
            else:
                self._events.append(item)
        self._unread = []
        return self._events

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]
