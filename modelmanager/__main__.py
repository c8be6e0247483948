"""``python -m modelmanager``: the command line, as the ``modelmanager`` command runs it.

``-m`` puts the working folder first on ``sys.path``; it is taken off before anything else is
imported, so a ``gguf.py`` or ``numpy.py`` in a model folder the user works in stays a file.
(A ``modelmanager/`` folder there is run by Python itself before this file: the console
script and ``python -I -m modelmanager`` are the safe ways to start the app.)
"""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from modelmanager.cli.main import main

raise SystemExit(main())
