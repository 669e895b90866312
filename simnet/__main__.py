from .cli import main

__all__ = []

raise SystemExit(main())
