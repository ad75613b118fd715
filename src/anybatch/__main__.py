"""``python -m anybatch``: the same as the ``anybatch`` command."""

from ._cli import main

raise SystemExit(main())
