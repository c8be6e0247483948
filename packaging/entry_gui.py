"""The windowed program of the Windows build: opens the app (and any files it is given).

Windows shows a console for a console program; ModelManagerApp.exe has none, modelmanager.exe
(entry.py) keeps the command line. (Not "ModelManager.exe": Windows does not tell it from
modelmanager.exe, so one would overwrite the other in the install folder.) Files come from
Explorer's "Open with" as arguments.
The window's imports and catalog rebuilds start ``sys.executable`` (this program) with a child
flag (core/children.py), so this entry point dispatches them too, as entry.py does.
"""

import sys

from modelmanager.core import children

if len(sys.argv) > 1 and sys.argv[1] == children.SANDBOX_FLAG:
    from modelmanager.core.formats import sandbox

    sys.exit(sandbox.child_main(sys.argv[2:]))
if len(sys.argv) > 1 and sys.argv[1] == children.CATALOG_FLAG:
    from modelmanager.core.catalog import reader

    sys.exit(reader.child_main(sys.argv[2:]))

# Only now: the child must not pay for the window's imports.
from modelmanager.cli.main import main

sys.exit(main(["gui", *sys.argv[1:]]))
