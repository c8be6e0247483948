"""The frozen program's entry point (PyInstaller): the command line, and the sandbox child.

A frozen app has no ``python -m``: the format sandbox starts this same program with
``CHILD_FLAG`` to parse a GGUF, HDF5 or ONNX file in a limited child process.
"""

import sys

from modelmanager.core.formats import sandbox

if len(sys.argv) > 1 and sys.argv[1] == sandbox.CHILD_FLAG:
    sys.exit(sandbox.child_main(sys.argv[2:]))

# Only now: the child must not pay for the command line's (and the GUI's) imports.
from modelmanager.cli.main import main

sys.exit(main())
