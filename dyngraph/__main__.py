"""``python -m dyngraph``: the same as the ``dyngraph`` console script."""

from dyngraph.cli import main

raise SystemExit(main())
