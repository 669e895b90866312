"""Pictures of a run, drawn from snapshots only: the network's frames, GIFs, the loss plot, the
message sweep of one step and the interactive replay page.

The modules that draw with matplotlib load when first used, so that the live
picture of ``train(show=True)`` (:mod:`simnet.viz.svg`) does not wait for them.
"""
import importlib

__all__ = ["plot_loss", "render_gif", "render_run", "write_page"]

_HOME = {"plot_loss": "render", "render_gif": "render", "render_run": "render", "write_page": "page"}


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
