"""``python -m modelmanager``: the same entry point as the ``modelmanager`` command."""

from modelmanager.cli.main import main

raise SystemExit(main())
