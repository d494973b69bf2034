"""``python -m jaxreg``: the ``jaxreg`` command."""

from .cli import main

raise SystemExit(main())
