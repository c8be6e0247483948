"""The windowed program of the Windows build: opens the app (and any files it is given).

Windows shows a console for a console program; ModelManager.exe has none, modelmanager.exe
(entry.py) keeps the command line. Files come from Explorer's "Open with" as arguments.
"""

import sys

from modelmanager.cli.main import main

sys.exit(main(["gui", *sys.argv[1:]]))
