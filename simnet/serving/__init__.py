"""Serving runs over HTTP: a directory of runs followed live (``simnet serve``) and live sessions steered by
hand (``simnet play``).  The web server is the optional ``serve`` extra (Starlette and uvicorn)."""
from .session import PlaySession

__all__ = ["PlaySession"]
