"""Reading a trace as a person would: a summary, one neuron's step explained, raw events.

    print(summary(trace))
    print(explain(trace, 412, "h2"))
    write_events(trace, sys.stdout, step=412, neuron="h2", fmt="table")
"""
import numpy as np

from ..errors import SimnetError, TraceError
from .export import FIELDS, plain, write_csv, write_jsonl
from ..core.functions import activation as lookup_activation, softmax
from ..scenario.runinfo import penalty, trace_data, trace_image, training_data
from ..scenario.running import evaluate

__all__ = ["DERIVATIVES", "EVENT_FORMATS", "INK", "explain", "explain_sample", "summary", "text_image", "write_events",
           "write_table"]

EVENT_FORMATS = ("table", "jsonl", "csv")

DERIVATIVES = {
    "relu": "1 where z > 0, else 0",
    "leaky_relu": "1 where z > 0, else 0.01",
    "sigmoid": "a·(1 − a)",
    "tanh": "1 − a²",
    "linear": "1",
}


def _n(x):
    """A number for people: six significant digits, or n/a."""
    if x is None:
        return "n/a"
    return f"{x:.6g}"


def _row(label, value, sample=None):
    """One line of a worked sum: label, batch mean, and sample 0 when there is one."""
    return f"  {label:<24} {_n(value)}" + ("" if sample is None else f"   (sample 0: {_n(sample)})")


def _count(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(trace):
    """A few lines: the run, where it stands, the network at its last step, its loss, its events."""
    meta = trace.metadata
    config = meta.get("config") or {}
    lines = [f"trace      {trace.path}  (schema {meta.get('schema')}, simnet {meta.get('version')}, "
             f"detail {trace.detail})"]
    if meta.get("scenario"):
        lines.append(f"scenario   {meta['scenario']}" + (f": {meta['description']}" if meta.get("description") else ""))
    lines.append(f"status     {trace.status}")
    if config:
        lines.append(f"run        seed {config.get('seed')}, {config.get('engine')} engine, loss {config.get('loss')}, "
                     f"optimizer {config.get('optimizer')}, lr {config.get('lr')}, "
                     f"batch {config.get('batch_size')} of {config.get('samples')} samples")
    if trace.last_step is None:
        return "\n".join(lines)
    history = trace.history()
    snapshots = trace.steps
    lines.append(f"steps      {trace.first_step} to {trace.last_step} ({len(history['step'])} trained; "
                 f"{len(snapshots)} snapshot steps, every {trace.every})")
    net = trace.network_at(trace.last_step)
    roles = [n.role for n in net.neurons.values()]
    frozen = sum(c.frozen for c in net.connections)
    lines.append(f"network    {_count(roles.count('input'), 'input')}, {roles.count('hidden')} hidden, "
                 f"{_count(roles.count('output'), 'output')}; {_count(len(net.connections), 'connection')}"
                 + (f" ({frozen} frozen)" if frozen else "") + f" at step {trace.last_step}")
    if len(history["step"]):
        lines.append(_final_loss(trace, history, config, net))
    held = trace.held_out()
    if len(held["step"]):
        lines.append(f"held out   loss {_n(float(held['loss'][-1]))}"
                     + ("" if np.isnan(held["accuracy"][-1]) else f", accuracy {_n(float(held['accuracy'][-1]))}")
                     + f" after step {held['step'][-1]} ({_count(len(held['step']), 'evaluation')})")
    actions = trace.actions()
    if actions:
        shown = ", ".join(f"{a['step']}: {a['label'] or a['action']}" for a in actions[:6])
        lines.append(f"actions    {len(actions)} scripted ({shown}{', ...' if len(actions) > 6 else ''})")
    counts = trace.event_counts()
    lines.append(f"events     {sum(counts.values())} ("
                 + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])) + ")")
    return "\n".join(lines)


def _final_loss(trace, history, config, net):
    """Both final losses, named: the last step's batch loss as recorded (with any penalty) and, when the
    trace gives the data set, the loss over all of it after the last step without the penalty (what the
    run's closing line and summary.json report)."""
    last, accuracy = int(history["step"][-1]), history["accuracy"][-1]
    words = penalty(config)
    line = (f"final loss {_n(float(history['loss'][-1]))} on the batch of step {last}" + (f" ({words})" if words else "")
            + ("" if np.isnan(accuracy) else f", accuracy {_n(float(accuracy))}"))
    data, loss = training_data(trace), config.get("loss")
    if data is None or trace.end_reason == "diverged" or last != trace.last_step or not isinstance(loss, str):
        return line
    try:
        L, acc, _ = evaluate(net, *data, loss)
    except (SimnetError, ValueError):
        return line  # a data set that does not fit the network it is said to train
    return (line + f"\n{'':11}{_n(L)} on the whole data set after it (no penalty)"
            + ("" if acc is None else f", accuracy {_n(float(acc))}"))


def explain(trace, step, neuron):
    """What `neuron` did at `step`, as a teacher would walk through it.

    Forward: the messages it received and from whom, their sum, the bias, z,
    the activation and what it sent on.  Backward: the gradients sent back to
    it, the local derivative, dL/dz and what it sent back.  Then the updates
    of its incoming weights and its bias.  Numbers are batch means; with a
    trace that keeps messages and samples, sample 0 is worked through too.
    """
    G = trace.snapshot(step)
    if neuron not in G:
        names = ", ".join(list(G)[:12])
        raise TraceError(f"{trace.path}: no neuron {neuron!r} at step {step}; there are {names}")
    node = G.nodes[neuron]
    title = f"Neuron {neuron} ({node['role']}, {node['fn']}) at step {step}"
    if step == trace.first_step:
        return "\n".join([title, "", "This is the state the run starts from: nothing has fired yet.",
                          f"  bias {_n(node['bias'])}"]
                         + [f"  weight {u} -> {neuron}: {_n(G.edges[u, neuron]['weight'])}"
                            for u in _incoming(G, neuron)])
    return "\n".join(_Explanation(trace, step, neuron, G).lines(title))


INK = " .:-=+*#%@"  # a pixel's value from the smallest to the largest of its image, as text


def text_image(values, shape):
    """`values` (rows × columns of them) as lines of text, each pixel two characters of INK, darker = larger."""
    grid = np.asarray(values, float).reshape(shape)
    low, high = grid.min(), grid.max()
    level = np.zeros(grid.shape, int) if high == low else np.round((grid - low) / (high - low) * (len(INK) - 1))
    return ["  " + "".join(INK[int(v)] * 2 for v in row) for row in level]


def explain_sample(trace, step, index, most=5):
    """The network's answer at `step` for sample `index` of the data set its pictures draw, for a person.

    Its input (as an image when the inputs form one), each output's z and
    softmax probability, the class picked against the true one, and the
    `most` neurons feeding the picked output that contributed most to its z
    (activation × weight).  SimnetError when the trace does not give its data
    or `index` is not one of its samples.
    """
    data, note = trace_data(trace)
    if data is None:
        raise SimnetError(f"{trace.path}: {note or 'no data points: the trace does not say what it trained on'}")
    X, Y = data
    if not 0 <= index < len(X):
        raise SimnetError(f"{trace.path}: sample {index} is not in the data set of {len(X)} samples "
                          f"(0 to {len(X) - 1})")
    net = trace.network_at(step)
    P = net.forward(X[index:index + 1])[0]
    outputs = [n.name for n in net.outputs]
    lines = [f"Sample {index} of {len(X)} at step {step}", "", "input:"]
    shape = trace_image(trace)
    if shape is not None:
        lines += text_image(X[index], shape) + [f"  ({shape[0]}×{shape[1]} image; darker is larger, "
                                                f"{X[index].min():.3g} to {X[index].max():.3g})"]
    else:
        lines += [f"  {n.name:<8} {_n(x)}" for n, x in zip(net.inputs, X[index])]
    several = len(outputs) > 1
    probability = softmax(P)
    lines += ["", "outputs:" + ("  z and softmax probability" if several else "")]
    lines += [f"  {name:<8} z {_n(z):>10}" + (f"   p {p:.3f}" if several else "")
              for name, z, p in zip(outputs, P, probability)]
    picked = int(P.argmax()) if several else 0
    if several:
        truth = int(np.argmax(Y[index]))
        verdict = "right" if picked == truth else f"wrong: the true class is {truth} ({outputs[truth]})"
        lines += ["", f"picked: class {picked} ({outputs[picked]}), p {probability[picked]:.3f}; {verdict}"]
    target = net.neurons[outputs[picked]]
    parts = sorted(((c.source.value[0] * c.weight, c.source.name, c.source.value[0], c.weight)
                    for c in target.incoming), key=lambda part: -abs(part[0]))
    lines += ["", f"what made {target.name}'s z {_n(P[picked])}: bias {_n(target.bias)} plus, largest first "
              "(activation × weight):"]
    lines += [f"  {name:<8} {_n(a):>10} × {_n(w):>10} = {_n(part):>10}" for part, name, a, w in parts[:most]]
    if len(parts) > most:
        rest = sum(part for part, *_ in parts[most:])
        lines.append(f"  and {len(parts) - most} more, together {_n(rest)}")
    return "\n".join(lines)


def _incoming(G, neuron):
    return sorted(G.predecessors(neuron), key=lambda u: G.edges[u, neuron]["order"])


def _outgoing(G, neuron):
    return sorted(G.successors(neuron), key=lambda v: G.edges[neuron, v]["order"])


class _Explanation:
    """The numbers of one neuron's step, gathered from the trace, and the words around them."""

    def __init__(self, trace, step, neuron, G):
        self.trace, self.step, self.neuron, self.G = trace, step, neuron, G
        self.node = G.nodes[neuron]
        events = list(trace.events(step=step, neuron=neuron))
        self.script = [e for e in events if e["phase"] == "script"]
        self.fire = {e["phase"]: e for e in events if e["kind"] == "fire" and e["neuron"] == neuron}
        self.messages = {(e["phase"], e["source"], e["target"]): e for e in events if e["kind"] == "message"}
        self.weight_updates = {(e["source"], e["target"]): e for e in events if e["kind"] == "weight_update"}
        self.bias_update = next((e for e in events if e["kind"] == "bias_update"), None)
        begin = next(iter(trace.events(step=step, kind="step_begin")), {})
        self.lr, self.batch = begin.get("lr"), begin.get("batch_size")
        order = [e["neuron"] for e in trace.events(step=step, kind="fire", phase="forward")]
        self.position = (order.index(neuron) + 1, len(order)) if neuron in order else None
        self.config = trace.metadata.get("config") or {}

    def used_weight(self, u, v):
        """The weight a connection had during the step's sweeps (before its update)."""
        update = self.weight_updates.get((u, v))
        return update["old"] if update else self.G.edges[u, v]["weight"]

    def message(self, phase, u, v):
        """Batch mean of the message on u -> v in `phase`, and its per-sample vector if kept."""
        event = self.messages.get((phase, u, v))
        if event is not None:
            return event["value"], event.get("value_samples")
        w = self.used_weight(u, v)
        if phase == "forward":
            return self.G.nodes[u]["activation"] * w, None
        return self.G.nodes[v]["gradient"] * w, None

    def lines(self, title):
        out = [title]
        kept = "messages as recorded" if self.messages else "messages rebuilt from activations × weights"
        out.append(f"batch of {self.batch} samples, learning rate {_n(self.lr)}; numbers are batch means ({kept})")
        for e in self.script:
            what = e["kind"].replace("_", " ")
            subject = e["neuron"] or f"{e['source']} -> {e['target']}"
            out.append(f"before the step: {what} {subject}")
        out += [""] + self.forward() + [""] + self.backward() + [""] + self.updates()
        return out

    def forward(self):
        G, n, node = self.G, self.neuron, self.node
        fire = self.fire.get("forward", {})
        where = f" (fired {self.position[0]} of {self.position[1]})" if self.position else ""
        out = [f"Forward sweep{where}"]
        sample = fire.get("z_samples") is not None
        if node["role"] == "input":
            out.append(f"  {n} is an input: it passes its column of X on unchanged, mean {_n(node['activation'])}")
        else:
            total, total0 = 0.0, 0.0
            incoming = _incoming(G, n)
            out.append("  incoming messages (activation of the sender × weight):" if incoming
                       else "  no incoming connections: z is the bias alone")
            for u in incoming:
                value, samples = self.message("forward", u, n)
                total += value
                line = (f"    from {u}: a = {_n(G.nodes[u]['activation'])} × w = {_n(self.used_weight(u, n))}"
                        f" → {_n(value)}")
                if sample and samples is not None:
                    total0 += samples[0]
                    line += f"   (sample 0: {_n(samples[0])})"
                out.append(line)
            bias = self.bias_update["old"] if self.bias_update else node["bias"]
            out.append(_row("sum of messages", total, total0 if sample else None))
            out.append(_row("+ bias", bias))
            out.append(_row("= z", node["preactivation"], fire["z_samples"][0] if sample else None))
            out.append(_row(f"a = {node['fn']}(z)", node["activation"], fire["a_samples"][0] if sample else None))
            if node["fn"] != "linear":
                out.append("    (the mean of f(z) over the batch, which is not f of the mean z)")
        outgoing = _outgoing(G, n)
        if outgoing:
            out.append("  sent on:")
            for v in outgoing:
                value, _ = self.message("forward", n, v)
                out.append(f"    to {v}: a × w = {_n(node['activation'])} × {_n(self.used_weight(n, v))} → {_n(value)}")
        else:
            out.append("  sent on: nothing; it is an output, compared with the target by the loss "
                       f"({self.config.get('loss', 'loss')})")
        return out

    def backward(self):
        G, n, node = self.G, self.neuron, self.node
        fire = self.fire.get("backward", {})
        out = ["Backward sweep"]
        outgoing = _outgoing(G, n)
        if node["role"] == "output":
            out.append(f"  dL/da comes from the loss ({self.config.get('loss', 'loss')}): {_n(fire.get('dL_da'))}")
        elif not outgoing:
            out.append("  no outgoing connections: nothing comes back, dL/da = 0")
        else:
            out.append("  incoming gradients (dL/dz of the receiver × weight):")
            total = 0.0
            for v in outgoing:
                value, _ = self.message("backward", n, v)
                total += value
                out.append(f"    from {v}: dL/dz = {_n(G.nodes[v]['gradient'])} × w = {_n(self.used_weight(n, v))}"
                           f" → {_n(value)}")
            out.append(_row("dL/da = sum", fire.get("dL_da", total)))
        derivative = DERIVATIVES.get(node["fn"], f"{node['fn']}'(z)")
        out.append(f"  local derivative da/dz = {derivative}" + self._mean_derivative(fire))
        out.append(_row("dL/dz = dL/da × da/dz", node["gradient"]) + "   (multiplied sample by sample)")
        incoming = _incoming(G, n)
        if incoming:
            out.append("  sent back:")
            for u in incoming:
                value, _ = self.message("backward", u, n)
                out.append(f"    to {u}: dL/dz × w = {_n(node['gradient'])} × {_n(self.used_weight(u, n))}"
                           f" → {_n(value)}")
        return out

    def _mean_derivative(self, backward):
        forward = self.fire.get("forward", {})
        z, a = forward.get("z_samples"), forward.get("a_samples")
        if z is None or a is None:
            return ""
        return f"; batch mean {_n(float(np.mean(lookup_activation(self.node['fn']).df(z, a))))}"

    def updates(self):
        G, n = self.G, self.neuron
        optimizer = self.config.get("optimizer", "sgd")
        regular = [f"{k} {self.config[k]}" for k in ("l1", "l2") if self.config.get(k)]
        out = [f"Updates ({optimizer}, learning rate {_n(self.lr)}"
               + (f", gradients include {' and '.join(regular)} of the weight" if regular else "") + ")"]
        for u in _incoming(G, n):
            update = self.weight_updates.get((u, n))
            if update is None:
                out.append(f"  weight {u} -> {n}: frozen, stays {_n(G.edges[u, n]['weight'])}")
                continue
            out.append(f"  weight {u} -> {n}: dL/dw = Σ over the batch of dL/dz × a({u}) = {_n(update['grad'])}")
            out.append("    " + self._rule(update))
        if self.bias_update is None:
            out.append(f"  bias: {n} is an input and has none to learn" if self.node["role"] == "input"
                       else "  bias: not updated")
        else:
            out.append(f"  bias: dL/db = Σ over the batch of dL/dz = {_n(self.bias_update['grad'])}")
            out.append("    " + self._rule(self.bias_update))
        return out

    def _rule(self, update):
        if self.config.get("optimizer", "sgd") == "sgd":
            return (f"new = old − lr × grad = {_n(update['old'])} − {_n(self.lr)} × {_n(update['grad'])}"
                    f" = {_n(update['new'])}  (Δ {_n(update['delta'])})")
        return f"{_n(update['old'])} → {_n(update['new'])}  (Δ {_n(update['delta'])}, the optimizer's step)"


def write_events(trace, out, *, step=None, neuron=None, kind=None, fmt="table"):
    """Write the events that match to the text stream `out` as table, jsonl or csv."""
    if fmt not in EVENT_FORMATS:
        raise TraceError(f"{trace.path}: unknown event format {fmt!r}; expected one of {', '.join(EVENT_FORMATS)}")
    events = trace.events(step=step, neuron=neuron, kind=kind)
    if fmt == "jsonl":
        write_jsonl(events, out)
    elif fmt == "csv":
        write_csv(events, out)
    else:
        write_table(events, out)


def write_table(events, out):
    """Aligned columns: seq, step, phase, kind, subject, then the numbers as name=value."""
    out.write(f"{'seq':>8} {'step':>6}  {'phase':<8} {'kind':<18} {'subject':<20} values\n")
    for e in events:
        subject = e["neuron"] or (f"{e['source']}->{e['target']}" if e["source"] else "")
        values = " ".join(f"{k}={_cell(v)}" for k, v in e.items() if k not in FIELDS)
        out.write(f"{e['seq']:>8} {e['step']:>6}  {e['phase']:<8} {e['kind']:<18} {subject:<20} {values}\n")


def _cell(value):
    if isinstance(value, np.ndarray):
        return f"[{len(value)} samples]"
    if isinstance(value, float):
        return _n(value)
    return plain(value)
