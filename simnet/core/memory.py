"""How much memory a network needs, worked out from its sizes before anything is built."""
import os

__all__ = ["CONNECTION_BYTES", "NEURON_BYTES", "available_memory", "budget", "bytes_text", "layered_size",
           "network_bytes"]

# Rough bytes per object while training with the actor engine (Python objects, lists, dict entries).
NEURON_BYTES = 600
CONNECTION_BYTES = 400


def network_bytes(neurons, connections):
    """Bytes the objects of a network of `neurons` and `connections` take, at least."""
    return neurons * NEURON_BYTES + connections * CONNECTION_BYTES


def layered_size(sizes):
    """(neurons, connections) of fully connected layers of `sizes`, by arithmetic alone."""
    return sum(sizes), sum(a * b for a, b in zip(sizes, sizes[1:]))


def available_memory():
    """Bytes of memory this machine has available now (MemAvailable), or its physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def budget():
    """Bytes one run may plan to use: half of what is available, leaving room for everything else."""
    return available_memory() // 2


def bytes_text(n):
    """`n` bytes for people: '512 bytes', '4.5 TB'."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
