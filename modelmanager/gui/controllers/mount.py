"""Mount…: the repository as read-only folders, served by a ``modelmanager mount`` child.

FUSE blocks the thread that serves it and installs process-wide SIGINT/SIGTERM handlers, so
the mount never runs in the window's process: a child started through QProcess (its output
arrives as signals; nothing here waits) prints one JSON document once mounted. The status bar
then shows "Mounted at …" with Open in file manager and Unmount. A child that fails says why in
one stderr line (exit 2), shown as one line; a child that ends later is noticed, and a mount it
left behind is cleared. Closing the window unmounts every mount it started.
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    QProcess,
    QProcessEnvironment,
    QTimer,
    QUrl,
)
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from modelmanager import paths
from modelmanager.core.children import NEUTRAL_FOLDER, child_environment
from modelmanager.core.text import shown
from modelmanager.errors import ModelManagerError
from modelmanager.gui.context import WindowContext
from modelmanager.services import mount_fuse

#: Milliseconds to wait for a child to exit after its unmount, when the window closes.
EXIT_WAIT_MS = 10_000


def mount_command(repo: Path, where: Path) -> list[str]:
    """The child's argument list: ``modelmanager --repo R mount M --json``, in isolated
    unbuffered Python (``-I -u``), or the frozen bundle's command-line program."""
    args = ["--repo", str(repo), "mount", str(where), "--json"]
    if getattr(sys, "frozen", False):
        # packaging/entry.py runs the command line; on Windows the window is ModelManager.exe
        # (entry_gui.py, which opens the window), so use its console sibling beside it.
        here = Path(sys.executable)
        cli = here.with_name(
            "modelmanager.exe" if platform.system() == "Windows" else "modelmanager"
        )
        return [str(cli if cli.exists() else here), *args]
    return [sys.executable, "-I", "-u", "-m", "modelmanager", *args]


def default_folder(repo: Path) -> Path:
    """The per-user folder a repository is mounted on unless the user picks another."""
    return paths.cache_dir() / "mount" / (repo.name or "repository")


def _why(stderr: str, code: int, crashed: bool) -> str:
    """Why a child ended: its last stderr line without the ``modelmanager: error:`` prefix,
    else how it ended (killed by a signal, or its exit code)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "the mount process was killed" if crashed else f"it exited with code {code}"
    why = lines[-1]
    for prefix in ("modelmanager:", "error:"):
        why = why.removeprefix(prefix).strip()
    return why


@dataclass(eq=False)
class Mount:
    """One mount this window started, and its child."""

    repo: Path
    where: Path
    model: str | None
    process: QProcess
    mounted: bool = False
    stopping: bool = False  # the window asked for the unmount: the child's exit is expected
    out: str = ""
    err: str = ""
    bar: QWidget | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        """What Open in file manager opens: the model's folder when one was chosen."""
        model = self.where / self.model if self.model else self.where
        return model if self.model and model.is_dir() else self.where


class MountController(QObject):
    """Mount…, Open in file manager, Unmount, and unmount on close, for one window."""

    def __init__(
        self, context: WindowContext, window: QWidget, shown_ref: Callable[[], str | None]
    ) -> None:
        super().__init__(window)
        self.context = context
        self.window = window
        #: The version the tabs show, as ``model@N``: its model's folder is the one opened.
        self.shown_ref = shown_ref
        self.mounts: list[Mount] = []  # running or starting, in the order started
        self.chooser: QFileDialog | None = None  # the last folder chooser (tests fill it)
        #: Why no mount can start here, once :meth:`check` found it (None: none found yet).
        self.problem: str | None = None
        self.checked = False  # check() ran: mfusepy is imported on first use, not at start
        self.last_error = ""  # the last failure shown, as one line
        window.installEventFilter(self)  # closing the window unmounts (see eventFilter)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.unmount_all)

    # -- starting -----------------------------------------------------------------------

    def check(self) -> str | None:
        """Why no mount can start here (None: it can), asked once, on first use: the check
        imports mfusepy (20-30 ms), which window start need not pay. A problem greys out
        File > Mount… (the window's ``mount_action``) with the reason as its tooltip."""
        if not self.checked:
            self.checked = True
            self.problem = mount_fuse.fuse_problem()
            action = getattr(self.window, "mount_action", None)
            if self.problem is not None and isinstance(action, QAction):
                action.setEnabled(False)
                action.setToolTip(self.problem)
                action.setStatusTip(self.problem)
        return self.problem

    def ask_mount(self, ref: str | None = None) -> QFileDialog | None:
        """Mount…: choose an empty folder (the per-user default is made and offered)."""
        if self.check() is not None:
            self._fail(f"Cannot mount: {self.problem}")
            return None
        repo = self.context.ws.repo.root
        model = (ref or self.shown_ref() or "").split("@")[0] or None
        for m in self.mounts:
            if m.repo == repo:
                m.model = model or m.model
                self.context.notify(f"{shown(str(repo))} is already mounted at {m.where}")
                return None
        folder = default_folder(repo)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail(f"Cannot make {folder}: {e.strerror or e}")
        chooser = QFileDialog(self.window, f"Mount {shown(str(repo))} on an empty folder")
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.setDirectory(str(folder.parent))
        chooser.selectFile(str(folder))
        chooser.fileSelected.connect(lambda chosen: self.start(Path(chosen), model))
        self.chooser = chooser
        chooser.open()
        return chooser

    def start(self, where: Path, model: str | None = None) -> Mount | None:
        """Start the child mounting the shown repository on ``where`` (an empty folder)."""
        where = where.absolute()
        if any(m.where == where for m in self.mounts):
            self._fail(f"Cannot mount: {where} is already a mount of this window")
            return None
        repo = self.context.ws.repo.root
        proc = QProcess(self)
        command = mount_command(repo, where)
        proc.setProgram(command[0])
        proc.setArguments(command[1:])
        proc.setWorkingDirectory(NEUTRAL_FOLDER)  # nothing beside the child is a module
        env = QProcessEnvironment()
        for key, value in child_environment().items():
            env.insert(key, value)
        # The JSON must arrive when mounted, not at exit: ``-u`` in Python; a frozen bundle's
        # interpreter may read this instead (plain Python ignores it under ``-I``).
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        m = Mount(repo, where, model, proc)
        proc.readyReadStandardOutput.connect(lambda: self._output(m))
        proc.readyReadStandardError.connect(lambda: self._errors(m))
        proc.finished.connect(lambda code, status: self._finished(m, code, status))
        proc.errorOccurred.connect(lambda error: self._start_failed(m, error))
        self.mounts.append(m)
        self.context.notify(f"Mounting {shown(str(repo))} on {where}…", 0)
        proc.start()
        return m

    def _output(self, m: Mount) -> None:
        m.out += bytes(m.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        if m.mounted:
            return
        try:
            doc, _end = json.JSONDecoder().raw_decode(m.out.lstrip())
        except ValueError:
            return  # not all of it yet
        if isinstance(doc, dict) and "mountpoint" in doc:
            m.mounted = True
            self._show(m)

    def _errors(self, m: Mount) -> None:
        m.err += bytes(m.process.readAllStandardError().data()).decode("utf-8", "replace")

    def _start_failed(self, m: Mount, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._forget(m)
            self._fail(f"Cannot mount: {m.process.program()} did not start "
                       f"({m.process.errorString()})")  # fmt: skip

    def _finished(
        self, m: Mount, code: int, status: QProcess.ExitStatus = QProcess.ExitStatus.NormalExit
    ) -> None:
        """The child ended: after an unmount that is expected; else say why in one line."""
        self._errors(m)
        self._forget(m)
        if mount_fuse.mounted_here(m.where):  # killed while mounted: clear what it left
            with contextlib.suppress(ModelManagerError):
                mount_fuse.unmount(m.where)
        crashed = status == QProcess.ExitStatus.CrashExit
        why = _why(m.err, code, crashed)
        at = "" if str(m.where) in why else f" ({m.where})"
        if m.stopping and code == 0 and not crashed:
            self.context.notify(f"Unmounted {m.where}")
        elif m.mounted:
            self._fail(f"The mount at {m.where} ended: {why}")
        else:
            self._fail(f"Cannot mount: {why}{at}")

    def _forget(self, m: Mount) -> None:
        if m in self.mounts:
            self.mounts.remove(m)
        if m.bar is not None:
            self.window.statusBar().removeWidget(m.bar)  # type: ignore[attr-defined]
            m.bar.deleteLater()
            m.bar = None

    def _fail(self, message: str) -> None:
        self.last_error = shown(message)
        self.context.notify(self.last_error)

    # -- mounted ------------------------------------------------------------------------

    def _show(self, m: Mount) -> None:
        """The status line of a mount: where, Open in file manager, Unmount."""
        bar = QWidget()
        bar.setObjectName("mount-bar")
        row = QHBoxLayout(bar)
        row.setContentsMargins(16, 0, 0, 0)  # apart from the repository's line
        text = QLabel(f"Mounted at {m.where}")
        text.setToolTip(f"{m.repo}, read-only: MODEL/@N, MODEL/latest, MODEL/LABEL")
        text.setTextFormat(text.textFormat().PlainText)
        row.addWidget(text)
        for label, run in (("Open in file manager", lambda: self.open_folder(m)),
                           ("Unmount", lambda: self.unmount(m))):  # fmt: skip
            button = QPushButton(label)
            button.setToolTip(f"{label} {m.where}")
            button.clicked.connect(lambda _checked=False, run=run: run())
            row.addWidget(button)
        m.bar = bar
        self.window.statusBar().addPermanentWidget(bar)  # type: ignore[attr-defined]
        self.context.notify("")  # "Mounting …" is over; the line above says where it is

    def open_folder(self, m: Mount | None = None) -> QUrl | None:
        """Open in file manager: the mounted model's folder (or the mount's)."""
        m = m or (self.mounts[-1] if self.mounts else None)
        if m is None or not m.mounted:
            return None
        url = QUrl.fromLocalFile(str(m.folder))
        if not QDesktopServices.openUrl(url):
            self._fail(f"No file manager opened {m.folder}")
        return url

    def unmount(self, m: Mount | None = None) -> bool:
        """Unmount: the child then exits 0 and the status line goes (False: it said why)."""
        m = m or (self.mounts[-1] if self.mounts else None)
        if m is None:
            return False
        m.stopping = True
        if not m.mounted:  # still starting: stop the child instead
            m.process.terminate()
            return True
        try:
            mount_fuse.unmount(m.where)
        except ModelManagerError as e:
            m.stopping = False
            self._fail(f"Cannot unmount: {e}")  # e.g. a file in it is still open
            return False
        return True

    def unmount_all(self) -> None:
        """Unmount every mount this window started and wait for the children (on close): no
        mount outlives the window, none is left stale."""
        for m in list(self.mounts):
            proc = m.process
            if not self.unmount(m) and proc.state() != QProcess.ProcessState.NotRunning:
                proc.terminate()  # busy: the child's own SIGTERM handler unmounts
            if not proc.waitForFinished(EXIT_WAIT_MS):
                proc.kill()
                proc.waitForFinished(EXIT_WAIT_MS)
            if m in self.mounts:  # finished may not have been delivered yet
                self._finished(m, proc.exitCode(), proc.exitStatus())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """A close of the window unmounts once the close went through (a close the window
        refused, e.g. jobs still running, leaves the mounts)."""
        if watched is self.window and event.type() == QEvent.Type.Close and self.mounts:
            QTimer.singleShot(0, self._after_close)
        return False

    def _after_close(self) -> None:
        if not self.window.isVisible():
            self.unmount_all()
