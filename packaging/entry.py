"""The frozen program's entry point (PyInstaller): the command line, and its children.

A frozen app has no ``python -I -c``: the format sandbox starts this same program with
``SANDBOX_FLAG`` to parse a GGUF, HDF5 or ONNX file in a limited child process, and a catalog
rebuild with ``CATALOG_FLAG`` to read half the manifests (core/children.py).
"""

import sys

from modelmanager.core import children

if len(sys.argv) > 1 and sys.argv[1] == children.SANDBOX_FLAG:
    from modelmanager.core.formats import sandbox

    sys.exit(sandbox.child_main(sys.argv[2:]))
if len(sys.argv) > 1 and sys.argv[1] == children.CATALOG_FLAG:
    from modelmanager.core.catalog import reader

    sys.exit(reader.child_main(sys.argv[2:]))

# Only now: the child must not pay for the command line's (and the GUI's) imports.
from modelmanager.cli.main import main

sys.exit(main())
