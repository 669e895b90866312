"""Pictures of a run, drawn from snapshots only: the network's frames, GIFs, the loss plot, the
message sweep of one step and the interactive replay page."""
from .page import write_page
from .render import plot_loss, render_gif, render_run

__all__ = ["plot_loss", "render_gif", "render_run", "write_page"]
