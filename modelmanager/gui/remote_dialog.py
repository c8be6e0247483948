"""The Add remote dialog: an S3 bucket (keys into the OS keyring), a shared folder, or a read-only
HTTP address; and the remotes' part of the tree's context menu."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.remote.credentials import keyring_problem
from modelmanager.core.text import shown
from modelmanager.errors import ModelManagerError
from modelmanager.services.remotes import RemoteSpec

S3, FOLDER, HTTP = 0, 1, 2
KINDS = ("S3 bucket (AWS, MinIO, Ceph…)", "Shared folder", "HTTP(S), read-only")

#: What the dialog asks the window to do with a filled form; it raises to keep the dialog open.
Adder = Callable[..., RemoteSpec]


def _line(placeholder: str = "", *, secret: bool = False) -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    if secret:
        edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit


class RemoteDialog(QDialog):
    """Fill in a remote; OK adds it through ``add`` (errors stay in the dialog, one line)."""

    def __init__(self, add: Adder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add remote")
        self.add = add
        self.added: RemoteSpec | None = None
        self.secret_used = False  # keys were given (and so went to the keyring)
        self.name = _line("e.g. team")
        self.kind = QComboBox()
        self.kind.addItems(KINDS)
        # S3
        self.endpoint = _line("blank for AWS; e.g. http://minio.lan:9000")
        self.bucket = _line("bucket name")
        self.prefix = _line("optional folder in the bucket, e.g. models/")
        self.profile = _line("optional AWS profile (~/.aws/credentials)")
        self.access_key = _line("access key id")
        self.secret_key = _line("secret access key", secret=True)
        self.problem = keyring_problem()
        self.keyring_note = QLabel()
        self.keyring_note.setWordWrap(True)
        if self.problem:  # one line, and the way that works without a keyring
            self.keyring_note.setText(shown(
                f"{self.problem[0].upper()}{self.problem[1:]}: keys cannot be kept here. Leave "
                "them blank and use an AWS profile or the AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY environment variables."))  # fmt: skip
            for edit in (self.access_key, self.secret_key):
                edit.setEnabled(False)
                edit.setPlaceholderText("no OS keyring: use a profile or the environment")
        else:
            self.keyring_note.setText("Keys go to the OS keyring, never into a file; blank: "
                                      "the profile or the AWS environment variables.")  # fmt: skip
        s3 = QWidget()
        form = QFormLayout(s3)
        form.setContentsMargins(0, 0, 0, 0)
        for label, edit in (("Endpoint", self.endpoint), ("Bucket", self.bucket),
                            ("Prefix", self.prefix), ("Profile", self.profile),
                            ("Access key id", self.access_key),
                            ("Secret key", self.secret_key)):  # fmt: skip
            form.addRow(label, edit)
        form.addRow(self.keyring_note)
        # Shared folder
        self.folder = _line("a folder every machine reaches (NFS, SMB, a synced drive)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder = QWidget()
        row = QHBoxLayout(folder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.folder)
        row.addWidget(browse)
        # HTTP
        self.url = _line("https://models.example.org/repo")
        http = QWidget()
        hform = QFormLayout(http)
        hform.setContentsMargins(0, 0, 0, 0)
        hform.addRow("Address", self.url)
        hform.addRow(QLabel("Read-only: versions can be browsed and pulled, not pushed."))
        self.pages = QStackedWidget()
        for page in (s3, folder, http):
            self.pages.addWidget(page)
        self.kind.currentIndexChanged.connect(self.pages.setCurrentIndex)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        top = QFormLayout()
        top.addRow("Name", self.name)
        top.addRow("Kind", self.kind)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())

    def _browse(self) -> None:
        found = QFileDialog.getExistingDirectory(self, "Shared folder", self.folder.text())
        if found:
            self.folder.setText(found)

    def url_of_form(self) -> str:
        """The remote's URL as the form describes it (checked by the service on add)."""
        if not self.name.text().strip():
            raise ValueError("give the remote a name")
        kind = self.kind.currentIndex()
        if kind == S3:
            bucket = self.bucket.text().strip().strip("/")
            if not bucket or "/" in bucket:
                raise ValueError("give the bucket's name alone (the folder goes in Prefix)")
            prefix = self.prefix.text().strip().strip("/")
            return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if kind == FOLDER:
            text = self.folder.text().strip()
            if not text:
                raise ValueError("choose the shared folder")
            return "file://" + str(Path(text).expanduser().absolute())
        text = self.url.text().strip()
        if not text.lower().startswith(("http://", "https://")):
            raise ValueError("the address must start with http:// or https://")
        return text

    def _accept(self) -> None:
        name = self.name.text().strip()
        try:
            url = self.url_of_form()
            s3 = self.kind.currentIndex() == S3
            self.secret_used = s3 and bool(self.access_key.text().strip())
            self.added = self.add(
                name, url,
                endpoint=(self.endpoint.text().strip() or None) if s3 else None,
                profile=(self.profile.text().strip() or None) if s3 else None,
                access_key=(self.access_key.text().strip() or None) if s3 else None,
                secret_key=(self.secret_key.text() or None) if s3 else None,
            )  # fmt: skip
        except (ValueError, ModelManagerError) as e:
            self.error.setText(shown(str(e)))
            return
        self.secret_key.clear()  # the secret does not stay in a widget longer than needed
        self.accept()


class RemotesHost(Protocol):
    """What the remotes' menu needs: the controller's actions and the repository's name."""

    def ask_add(self) -> object: ...
    def ask_remove(self, name: str) -> object: ...
    def refresh(self) -> None: ...
    def pull(self, remote_name: str, ref: str) -> object: ...
    def pull_all(self, remote_name: str) -> object: ...
    @property
    def target_name(self) -> str: ...


def remote_actions(menu: QMenu, host: RemotesHost, item: tuple[str, str | None] | None) -> None:
    """The tree's context menu on the remotes' place (``item`` None), a remote, or one of its
    models or versions: add, remove, refresh, pull."""
    name, ref = item if item else (None, None)
    if ref and "@" in ref:
        menu.addAction(shown(f"Pull {ref} into {host.target_name}"),
                       lambda: host.pull(name or "", ref))  # fmt: skip
    if name and ref is None:
        menu.addAction(shown(f"Pull everything from {name} into {host.target_name}"),
                       lambda: host.pull_all(name))  # fmt: skip
    if not menu.isEmpty():
        menu.addSeparator()
    menu.addAction("Add remote…", host.ask_add)
    if name and ref is None:
        menu.addAction(shown(f"Remove remote {name}…"), lambda: host.ask_remove(name))
    menu.addAction("Refresh remotes", host.refresh)
