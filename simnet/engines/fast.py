"""The fast engine: the network compiled into arrays, each sweep a few whole-array operations.

Compiling sorts the neurons into waves: wave 0 holds the neurons without
incoming connections, wave k those whose longest path back to wave 0 has k
connections, so a wave depends on earlier waves only.  Each neuron gets a row
of the (neurons, batch) matrices z, a, dL/da and dL/dz, wave after wave, and
each connection a place in the weight vector, wave after wave.  The
connections into a wave form a block of the weight matrix, between the rows
of their sources and the rows of the wave:

- a full block (a layer fully connected to the one before it) is a view of
  the weight vector, and the wave is one matrix product each way;
- a partly full block (down to DENSE_FILL of its cells) is filled from the
  weight vector once per step, and multiplied the same way;
- a sparser block is not built at all: the sweep gathers the source rows of
  every connection and adds them up per target (per source, going back), a
  few hundred connections at a time so that what it gathers stays in the cache.

The numbers are those of the actor engine up to the rounding of sums taken in
another order, and so are the events, with the same sequence numbers: whole
phases as EventBatch columns, or, when someone listens to messages, neuron by
neuron in the actor's firing order.

The arrays are the truth while the engine works.  The Network objects
(weights, biases, gradients, the neurons' z, value, dL_da, dL_dz) are written
back after every call, or, inside ``deferred(net)`` (the training loop), only
when they are looked at: the engine tells the network it is ahead
(``net.defer_to``), and the next reading of ``net.neurons`` or
``net.connections`` - which every Network method and every way from the
network to its objects goes through - has it write its numbers back first,
as does the end of the run.  So a step nobody looks at costs no writing back
of 100,000 weights, and user code between steps (``before_step``,
``progress``, a subscriber) sees the objects as the actor engine would leave
them, as long as it reaches them through the network; an object held from
before the run can lag behind until then.  After writing back, the engine
reads the objects again before its next call, so whatever was changed is
seen; a topology change (``net.version`` moved) or a changed activation
compiles the network again, carrying over the optimizer's state of every
connection and neuron still there.
"""
from contextlib import contextmanager
from functools import partial

import numpy as np

from ..core.engine import Engine, firing_order, link_names
from ..core.functions import activation_names
from ..errors import SimnetError
from .actor import emit_updates, message_values, regularised

__all__ = ["DENSE_FILL", "GATHER_CELLS", "Buffers", "Compiled", "FastEngine", "Wave"]

# A block of the weight matrix at least this full is multiplied as a dense matrix: a BLAS
# product costs about 1/50 of what gathering one connection's row costs, per cell.
DENSE_FILL = 0.02
# A sparse wave gathers the rows of its connections this many cells (connections × batch) at a time:
# pieces that stay in the cache, where gathering 100,000 connections at once took five times as long.
GATHER_CELLS = 1 << 15


class FastEngine(Engine):
    """Runs the sweeps and the update on arrays compiled from the network."""

    name = "fast"

    def __init__(self):
        self.compiled = None
        self.current = False  # the compiled numbers are at least as new as the objects'
        self.deferring = False
        self.optimizer = None
        self.state = None  # the optimizer's state: (weight arrays, bias arrays) in compiled order

    # ---- the engine interface ------------------------------------------------

    def forward(self, net, X, step=None):
        """Forward sweep for inputs X (batch, n_inputs); returns the outputs (batch, n_outputs)."""
        c = self._compiled(net)
        c.forward(X)
        if step is not None and net.bus:
            self._tell_sweep(net.bus, step, c, forward=True)
        self._done(net, changed=True)
        return c.outputs()

    def backward(self, net, grad_outputs, step=None):
        """Backward sweep from dL/d(outputs) (batch, n_outputs); accumulates the gradients."""
        c = self._compiled(net)
        c.backward(grad_outputs)
        if step is not None and net.bus:
            self._tell_sweep(net.bus, step, c, forward=False)
        self._done(net, changed=True)

    def update(self, net, optimizer, lr, l1, l2, step=None):
        """Apply the optimizer to every unfrozen weight and every non-input bias (L1/L2 on weights).

        Returns True if every weight and bias is finite afterwards.
        """
        c = self._compiled(net)
        if optimizer is not self.optimizer or self.state is None:
            self.optimizer = optimizer
            self.state = tuple(tuple(np.zeros(n) for _ in range(optimizer.state_size))
                               for n in (len(c.connections), len(c.neurons)))
        optimizer.next_step()
        bus = net.bus if step is not None else None
        tell_weight = bool(bus) and bus.wants("weight_update")
        tell_bias = bool(bus) and bus.wants("bias_update")
        grad_w, grad_b = c.gradients()
        grad_w = regularised(grad_w, c.w, l1, l2)
        if tell_weight:
            old_w = _copy(c.w, c.update_positions)
        if tell_bias:
            old_b = _copy(c.b, c.bias_event_rows)
        self.state = (_step_in_place(optimizer, c.w, grad_w, lr, self.state[0], c.trainable),
                      _step_in_place(optimizer, c.b, grad_b, lr, self.state[1], c.bias_rows))
        c.weights_changed()
        if tell_weight:
            new_w = _copy(c.w, c.update_positions)
            emit_updates(bus, step, "weight_update", old_w, new_w, _copy(grad_w, c.update_positions),
                         sources=c.update_sources, targets=c.update_targets)
        if tell_bias:
            rows = c.bias_event_rows
            emit_updates(bus, step, "bias_update", old_b, _copy(c.b, rows), _copy(grad_b, rows), neurons=c.bias_names)
        self._done(net, changed=True)
        return bool(np.isfinite(c.w).all() and np.isfinite(c.b).all())

    def zero_grad(self, net):
        self._compiled(net).zero_grad()
        self._done(net, changed=True)

    def weights(self, net):
        """Every weight in the order of net.connections (the engine's own array when it can: do not keep it)."""
        c = self._compiled(net)
        self._done(net, changed=False)
        return _pick(c.w, c.connection_positions)

    def sync(self, net):
        """Write the compiled numbers back to the Network objects, which are the truth from then on."""
        if self.current and self.compiled.net is net:
            self.compiled.store()
            self.current = False

    @contextmanager
    def deferred(self, net):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
            net.catch_up()

    # ---- keeping arrays and objects in step ------------------------------------

    def _compiled(self, net):
        """The compiled network, read again from the objects (or compiled again) when they may have changed."""
        old = self.compiled
        if old is not None and old.net is net and old.version == net.version and (self.current or old.load()):
            self._ahead_of(net)
            return old
        if old is not None and self.current:
            old.store()
        self.compiled = new = Compiled(net)
        if self.state is not None and old is not None and old.net is net:
            self.state = (_carry(self.state[0], old.connections, new.connections),
                          _carry(self.state[1], old.neurons, new.neurons))
        else:
            self.state = None
        self._ahead_of(net)
        return new

    def _ahead_of(self, net):
        # only a deferred run lets the arrays get ahead of the objects: outside one every call writes
        # them back as it ends, and one that fails half-way leaves the objects the truth
        if self.deferring:
            self.current = True
            net.defer_to(self)  # whoever reads the graph next has the numbers written back first

    def _done(self, net, changed):
        # outside a deferred run the objects must be right after every call
        if not self.deferring and changed:
            self.compiled.store()

    # ---- events -----------------------------------------------------------------

    def _tell_sweep(self, bus, step, c, forward):
        phase = "forward" if forward else "backward"
        tell_fire = bus.wants("fire")
        if bus.wants("message"):
            self._tell_messages(bus, step, c, forward, tell_fire)
            c.handed_out = True  # the events hold rows of this step's matrices: the next step gets new ones
        elif tell_fire and forward:
            bus.emit_batch(step, phase, "fire", neurons=c.fire_names,
                           data={"z": _copy(c.Z, c.fire_rows), "a": _copy(c.A, c.fire_rows)})
        elif tell_fire:
            bus.emit_batch(step, phase, "fire", neurons=c.back_names,
                           data={"dL_da": _copy(c.dA, c.back_rows), "dL_dz": _copy(c.dZ, c.back_rows)})

    def _tell_messages(self, bus, step, c, forward, tell_fire):
        """Fire and message events neuron by neuron, in the order the actor engine sends them."""
        phase = "forward" if forward else "backward"
        sent = c.A if forward else c.dZ
        for name, row, positions, sources, targets in c.senders(forward):
            if tell_fire:
                data = {"z": c.Z[row], "a": c.A[row]} if forward else {"dL_da": c.dA[row], "dL_dz": c.dZ[row]}
                bus.emit(step, phase, "fire", neuron=name, data=data)
            if len(positions):
                bus.emit_batch(step, phase, "message", sources=sources, targets=targets,
                               data={"value": partial(message_values, c.w[positions], sent[row])})


def _step_in_place(optimizer, values, grads, lr, state, where):
    """One optimizer step on values[where] (all values if where is None), in place; returns the new state."""
    if where is None:
        values[...], state = optimizer.rule(values, grads, lr, state)
        return state
    values[where], part = optimizer.rule(values[where], grads[where], lr, tuple(s[where] for s in state))
    for s, p in zip(state, part):
        s[where] = p
    return state


def _carry(state, old_items, new_items):
    """State arrays laid out for `new_items`: each item's entries where it was among `old_items`, zero if new."""
    where = {item: i for i, item in enumerate(old_items)}
    take = np.array([where.get(item, -1) for item in new_items], dtype=np.intp)
    kept = take >= 0
    carried = []
    for s in state:
        t = np.zeros(len(new_items))
        t[kept] = s[take[kept]]
        carried.append(t)
    return tuple(carried)


def _pick(array, index):
    return array if index is None else array[index]


def _copy(array, index):
    """array[index] (all of it if index is None) as an array of its own."""
    if index is None or isinstance(index, slice):
        return _pick(array, index).copy()
    return array[index]  # indexing with an array already copies


def _index(positions):
    """`positions` as a slice when they are contiguous and ascending, as an index array otherwise."""
    positions = np.asarray(positions, dtype=np.intp)
    if len(positions) and np.array_equal(positions, np.arange(positions[0], positions[0] + len(positions))):
        return slice(int(positions[0]), int(positions[0]) + len(positions))
    return positions


def _selection(positions, size):
    """`positions` as None when they select everything in order, otherwise as _index gives them."""
    index = _index(positions)
    if isinstance(index, slice) and index.start == 0 and index.stop == size:
        return None
    return index


class Wave:
    """One wave: its neurons (rows `rows`) and the connections into them (weights `seg`)."""

    def __init__(self, start, stop, groups, connections, row, offset):
        self.rows = slice(start, stop)
        self.groups = groups  # (Activation, slice of rows): runs of neurons with one activation
        self.connections = sorted(connections, key=lambda c: (row[c.target], row[c.source]))
        self.seg = slice(offset, offset + len(self.connections))
        self.kind = None
        if not self.connections:
            return
        src = np.array([row[c.source] for c in self.connections], dtype=np.intp)
        tgt = np.array([row[c.target] for c in self.connections], dtype=np.intp)
        lo, hi = int(src.min()), int(src.max()) + 1
        self.sources, self.shape = slice(lo, hi), (stop - start, hi - lo)
        cells = self.shape[0] * self.shape[1]
        if len(src) == cells:
            self.kind = "dense"
        elif len(src) >= DENSE_FILL * cells:
            self.kind = "masked"
            self.cells = (tgt - start) * (hi - lo) + (src - lo)
            self._block = np.zeros(self.shape)
            self._block_version = None
        else:
            self.kind = "sparse"
            self.src, self.tgt = src, tgt
            self.starts = np.searchsorted(tgt, np.arange(start, stop))
            self.by_source = np.argsort(src, kind="stable")
            self.source_rows, self.source_starts = np.unique(src[self.by_source], return_index=True)
            self._pieces = {}  # batch size -> _Pieces

    def bind(self, w, b):
        """Views of the compiled weights and biases, which live as long as the compiled network."""
        self.bias = b[self.rows, None]
        if self.kind == "dense":
            self.W = w[self.seg].reshape(self.shape)
        self.w = w[self.seg]

    def block(self, version):
        """The (wave, sources) weight matrix for the weights as they are at `version`."""
        if self.kind == "dense":
            return self.W
        if self._block_version != version:
            self._block.reshape(-1)[self.cells] = self.w
            self._block_version = version
        return self._block

    def pieces(self, batch):
        """How a sparse wave's sweeps go through its connections a few at a time, for `batch` samples."""
        if batch not in self._pieces:
            self._pieces[batch] = _Pieces(self, max(1, GATHER_CELLS // batch))
        return self._pieces[batch]

    def forward(self, v, A, version):
        """z of the wave's rows: Σ w·a over the incoming connections, + b."""
        if self.kind == "sparse":
            # a few targets at a time, each target's terms summed in the same order as all at once
            for rows, links, starts in self.pieces(A.shape[1]).by_target:
                v.z[rows] = np.add.reduceat(A[self.src[links]] * self.w[links, None], starts)
        elif self.kind is not None:
            np.matmul(self.block(version), v.a_sources, out=v.z)
        v.z += self.bias

    def backward(self, v, A, dZ, dA, version):
        """dL/dw of the incoming connections into v.g; Σ w·dL/dz added to the sources' dL/da."""
        if self.kind == "sparse":
            pieces = self.pieces(A.shape[1])
            for _, links, _ in pieces.by_target:
                v.g[links] = np.einsum("ij,ij->i", A[self.src[links]], dZ[self.tgt[links]])
            for rows, links, starts in pieces.by_source:
                dA[rows] += np.add.reduceat(dZ[self.tgt[links]] * self.w[links, None], starts)
            return
        if self.kind == "dense":
            np.matmul(v.dz, v.a_sources.T, out=v.g_block)
        else:
            v.g[...] = (v.dz @ v.a_sources.T).reshape(-1)[self.cells]
        v.da_sources += self.block(version).T @ v.dz


class _Pieces:
    """A sparse wave's connections in pieces of about `size`: runs of whole targets (``by_target``: the
    wave's rows, the connections, where each target's start) or of whole sources (``by_source``: the source
    rows, the connections in source order, where each source's start)."""

    def __init__(self, wave, size):
        count = len(wave.src)
        self.by_target = [(slice(first, end), slice(lo, hi), wave.starts[first:end] - lo)
                          for first, end, lo, hi in _runs(wave.starts, count, size)]
        self.by_source = [(wave.source_rows[first:end], wave.by_source[lo:hi], wave.source_starts[first:end] - lo)
                          for first, end, lo, hi in _runs(wave.source_starts, count, size)]


def _runs(starts, count, size):
    """Consecutive groups (group k holds items starts[k] up to the next start, or `count`) taken together
    until they hold at least `size` items: (first group, end group, first item, end item) of each run."""
    ends = [*starts[1:].tolist(), count]
    runs, first = [], 0
    for k, end in enumerate(ends):
        if end - starts[first] >= size or k == len(ends) - 1:
            runs.append((first, k + 1, int(starts[first]), end))
            first = k + 1
    return runs


class _Views:
    """A wave's views into one set of buffers, made once per set."""

    def __init__(self, wave, Z, A, dA, dZ, G):
        self.z, self.dz = Z[wave.rows], dZ[wave.rows]
        self.groups = [(activation, Z[rows], A[rows], dA[rows], dZ[rows]) for activation, rows in wave.groups]
        if wave.kind is not None:
            self.a_sources, self.da_sources = A[wave.sources], dA[wave.sources]
            self.g = G[wave.seg]
            if wave.kind == "dense":
                self.g_block = self.g.reshape(wave.shape)


class Buffers:
    """The (neurons, batch) matrices z, a, dL/da, dL/dz and the weight gradients of one batch size."""

    def __init__(self, compiled, batch):
        shape = (len(compiled.neurons), batch)
        self.batch = batch
        self.Z, self.A, self.dA, self.dZ = (np.empty(shape) for _ in range(4))
        self.G = np.empty(len(compiled.connections))
        self.views = [_Views(wave, self.Z, self.A, self.dA, self.dZ, self.G) for wave in compiled.waves]


class Compiled:
    """A network as arrays: rows of neurons wave by wave, weights wave by wave, and the sweeps on them.

    The weight and bias vectors are allocated once and changed in place, so the
    waves' views of them stay valid; the matrices of a sweep are reused from
    step to step until something outside may hold them (events, the neurons'
    values after a store), and then made afresh.
    """

    def __init__(self, net):
        self.net, self.version = net, net.version
        self.fired = fired = firing_order(net)
        level = {}
        for n in fired:
            level[n] = 1 + max((level[c.source] for c in n.incoming), default=-1)
        rank = {name: i for i, name in enumerate(activation_names())}
        # firing order already runs wave by wave; within a wave, neurons of one activation go together
        self.neurons = sorted(fired, key=lambda n: (level[n], rank[n.activation]))
        self.activations = [n._activation for n in self.neurons]
        row = {n: i for i, n in enumerate(self.neurons)}
        self.waves, self.connections = [], []
        start = 0
        while start < len(self.neurons):
            stop = start
            while stop < len(self.neurons) and level[self.neurons[stop]] == level[self.neurons[start]]:
                stop += 1
            incoming = [c for n in self.neurons[start:stop] for c in n.incoming]
            wave = Wave(start, stop, self._groups(start, stop), incoming, row, len(self.connections))
            self.waves.append(wave)
            self.connections.extend(wave.connections)
            start = stop
        position = {c: i for i, c in enumerate(self.connections)}
        self.input_rows = _index([row[n] for n in net.inputs])
        # the usual case: the first wave is the inputs, in order, and takes X as it is
        self.inputs_first = isinstance(self.input_rows, slice) and self.input_rows == self.waves[0].rows
        self.output_rows = _index([row[n] for n in net.outputs])
        self.connection_positions = _selection([position[c] for c in net.connections], len(self.connections))
        self.fire_rows = _selection([row[n] for n in fired], len(self.neurons))
        self.fire_names = tuple(n.name for n in fired)
        self.backward_order = backward = firing_order(net, backward=True)
        self.back_rows = _selection([row[n] for n in backward], len(self.neurons))
        self.back_names = tuple(n.name for n in backward)
        with_bias = [n for n in net.neurons.values() if n.role != "input"]
        self.bias_rows = _index(sorted(row[n] for n in with_bias))
        self.bias_event_rows = _index([row[n] for n in with_bias])
        self.bias_names = tuple(n.name for n in with_bias)
        self._row, self._position, self._senders = row, position, {}
        self.w, self.b = np.zeros(len(self.connections)), np.zeros(len(self.neurons))
        for wave in self.waves:
            wave.bind(self.w, self.b)
        self.weights_version = 0
        self.buffers, self.handed_out = None, False
        self.Z = self.A = self.dA = self.dZ = None
        self.frozen = None
        self.load()

    def _groups(self, start, stop):
        groups = []
        for i in range(start, stop + 1):
            if i == stop or (i > start and self.activations[i] is not self.activations[i - 1]):
                first = groups[-1][1].stop if groups else start
                groups.append((self.activations[i - 1], slice(first, i)))
        return groups

    def weights_changed(self):
        self.weights_version += 1

    def load(self):
        """Read weights, biases and frozen flags from the objects; False if it must compile again.

        The gradients stay on the objects until something needs them: training
        zeroes them before every backward sweep anyway.
        """
        if [n._activation for n in self.neurons] != self.activations:
            return False
        self.w[...] = [c.weight for c in self.connections]
        self.b[...] = [n.bias for n in self.neurons]
        self.weights_changed()
        self.grads_on_objects = True
        frozen = [c.frozen for c in self.connections]
        if frozen != self.frozen:
            self.frozen = frozen
            self.trainable = _selection([i for i, f in enumerate(frozen) if not f], len(frozen))
            updated = [c for c in self.net.connections if not c.frozen]
            self.update_positions = _selection([self._position[c] for c in updated], len(self.connections))
            self.update_sources, self.update_targets = link_names(updated)
        return True

    def store(self):
        """Write the numbers back to the Network objects."""
        if self.grads_on_objects:
            for c, w in zip(self.connections, self.w.tolist()):
                c.weight = w
            for n, b in zip(self.neurons, self.b.tolist()):
                n.bias = b
        else:
            grad_w, grad_b = self.gradients()
            for c, w, g in zip(self.connections, self.w.tolist(), grad_w.tolist()):
                c.weight, c.grad = w, g
            for n, b, g in zip(self.neurons, self.b.tolist(), grad_b.tolist()):
                n.bias, n.bias_grad = b, g
        if self.Z is not None:
            for n, z, a in zip(self.neurons, self.Z, self.A):
                n.z, n.value = z, a
            self.handed_out = True
        if self.dZ is not None:
            for n, da, dz in zip(self.neurons, self.dA, self.dZ):
                n.dL_da, n.dL_dz = da, dz

    def zero_grad(self):
        self.grad_w = self.grad_b = None
        self.grads_on_objects = False

    def gradients(self):
        """(dL/dw in compiled order, dL/db in row order); zeros after zero_grad."""
        if self.grads_on_objects:
            self.grad_w = np.array([c.grad for c in self.connections], dtype=float)
            self.grad_b = np.array([n.bias_grad for n in self.neurons], dtype=float)
            self.grads_on_objects = False
        if self.grad_w is None:
            return np.zeros(len(self.connections)), np.zeros(len(self.neurons))
        return self.grad_w, self.grad_b

    def forward(self, X):
        buffers = self.buffers
        if buffers is None or buffers.batch != X.shape[0] or self.handed_out:
            self.buffers = buffers = Buffers(self, X.shape[0])
            self.handed_out = False
        self.Z, self.A, self.dA, self.dZ = buffers.Z, buffers.A, None, None
        A, version = buffers.A, self.weights_version
        for wave, v in zip(self.waves, buffers.views):
            if wave.kind is not None:
                wave.forward(v, A, version)
            elif self.inputs_first:
                np.add(X.T, wave.bias, out=v.z)
            else:
                v.z[...] = 0.0
                buffers.Z[self.input_rows] = X.T
                v.z += wave.bias
            for activation, z, a, _, _ in v.groups:
                a[...] = activation.f(z)

    def outputs(self):
        return self.A[self.output_rows].T.copy()

    def backward(self, grad_outputs):
        buffers = self.buffers
        if self.A is None or buffers.batch != grad_outputs.shape[0]:
            raise SimnetError(f"backward needs a forward sweep of the same batch first "
                              f"(grad_outputs has {grad_outputs.shape[0]} rows)")
        if self.grads_on_objects:  # gradients accumulate: take them in from the objects
            self.gradients()
        if self.grad_w is buffers.G:
            self.grad_w = buffers.G.copy()  # and keep them apart from the buffer
        A, dA, dZ, version = buffers.A, buffers.dA, buffers.dZ, self.weights_version
        dA[...] = 0.0
        dA[self.output_rows] = grad_outputs.T
        for wave, v in zip(reversed(self.waves), reversed(buffers.views)):
            for activation, z, a, da, dz in v.groups:
                np.multiply(da, activation.df(z, a), out=dz)
            if wave.kind is not None:
                wave.backward(v, A, dZ, dA, version)
        self.dA, self.dZ = dA, dZ
        if self.grad_w is None:
            self.grad_w, self.grad_b = buffers.G, dZ.sum(axis=1)
        else:
            self.grad_w, self.grad_b = self.grad_w + buffers.G, self.grad_b + dZ.sum(axis=1)

    def senders(self, forward):
        """Per neuron in firing order: name, row, and the weight positions and names of the links it sends on."""
        if forward not in self._senders:
            rows = []
            for n in self.fired if forward else self.backward_order:
                links = n.outgoing if forward else n.incoming
                rows.append((n.name, self._row[n], np.array([self._position[c] for c in links], dtype=np.intp),
                             *link_names(links)))
            self._senders[forward] = rows
        return self._senders[forward]
