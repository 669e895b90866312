"""What a scenario's run needs in memory, worked out from its sizes before anything is built."""
import math

from ..core.memory import budget, bytes_text, network_bytes
from ..errors import ScenarioError
from . import datasets

__all__ = ["CSV_TEXT_BYTES", "STEP_BYTES", "check_sizes", "csv_bytes", "memory_estimate"]


STEP_BYTES = 100  # one entry in each of the History lists
# Parsing a CSV file holds its bytes and their text at once: two bytes per byte read.
CSV_TEXT_BYTES = 2


def memory_estimate(scenario, samples=None):
    """{part: bytes} a run of `scenario` needs at least: the network's objects, the values one
    batch puts on them, the data set, the per-step history.

    `samples`: the data set's size where the file does not give it (a CSV file's rows).
    """
    neurons, connections = scenario.network.size()
    samples = _samples(scenario, samples)
    batch = _batch_size(scenario, samples)
    columns = scenario.network.count("input") + scenario.network.count("output")
    return {
        "network": network_bytes(neurons, connections),
        "batch": _per_sample(scenario) * batch,
        "data": samples * columns * 8 * 2,
        "history": scenario.training.steps * STEP_BYTES,
    }


def _per_sample(scenario):
    """Bytes one sample of a batch puts on the network while training."""
    neurons, connections = scenario.network.size()
    # every neuron keeps z, a, dL/da, dL/dz; every connection a message each way, per sample of the batch
    return neurons * 4 * 8 + connections * 2 * 8


def _samples(scenario, samples=None):
    return samples if samples is not None else scenario.data.samples if scenario.data.kind != "csv" else 0


def _batch_size(scenario, samples=None):
    """Samples per step as far as is known (a CSV file's length is not, before it is read)."""
    return min(scenario.training.batch_size or math.inf, _samples(scenario, samples)) or 1


def check_sizes(scenario, samples=None):
    """ScenarioError naming the key to change if a run of `scenario` needs more memory than there is.

    `samples`: the data set's size where the file does not give it (see :func:`memory_estimate`).
    """
    parts = memory_estimate(scenario, samples)
    total, limit = sum(parts.values()), budget()
    if total <= limit:
        return
    samples = _samples(scenario, samples)
    biggest = max(parts, key=parts.get)
    if biggest == "batch" and parts["network"] + parts["batch"] // _batch_size(scenario, samples) > limit:
        biggest = "network"  # too big even for one sample at a time: the network is what to shrink
    neurons, connections = scenario.network.size()
    network = f"a network of {neurons:,} neurons and {connections:,} connections"
    batch = scenario.training.batch_size
    data_key = "data.path" if scenario.data.kind == "csv" else "data.samples"
    where, what = {
        "network": ("network.layers" if scenario.network.layers else "network.neurons", network),
        "batch": ("training.batch_size", f"{network} with batches of {batch:,} samples") if batch else
                 (data_key, f"{network} with the whole data set of {samples:,} samples as one batch"),
        "data": (data_key, f"{samples:,} samples"),
        "history": ("training.steps", f"{scenario.training.steps:,} steps"),
    }[biggest]
    raise ScenarioError(scenario.path, where, f"too big: {what} needs about {bytes_text(total)} of memory; "
                        f"this machine has {bytes_text(limit * 2)} available")


def csv_bytes(scenario):
    """The most bytes of CSV data `scenario` can afford to read, with how many rows they could hold at most.

    A row of n numbers takes at least 2n bytes ("0," per number, the last one's
    comma a line end), so the bytes read bound the rows before any is parsed.
    """
    parts, batch = memory_estimate(scenario, 0), scenario.training.batch_size
    fixed = parts["network"] + parts["history"] + (_per_sample(scenario) * batch if batch else 0)
    columns = scenario.network.count("input") + scenario.network.count("output")
    # without a batch size the whole data set is one batch: every row costs its share of it too
    per_row = columns * 8 * 2 + (0 if batch else _per_sample(scenario))
    per_byte = CSV_TEXT_BYTES + per_row / (2 * columns)
    return max(0, min(datasets.MAX_CSV_BYTES, int((budget() - fixed) / per_byte)))
