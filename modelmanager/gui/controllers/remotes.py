"""Remotes in the repository tree: list them, push a version to one, pull one from it."""

from __future__ import annotations

from modelmanager.core.jobs import JobContext
from modelmanager.core.text import shown
from modelmanager.core.units import plural
from modelmanager.errors import ModelManagerError
from modelmanager.gui.changes import changes_of
from modelmanager.gui.context import WindowContext
from modelmanager.gui.jobs_bridge import GUI_LOCK_WAIT, JobRecord
from modelmanager.gui.models import RepoTreeModel
from modelmanager.services import Changes, remotes


class RemotesController:
    """Reads every configured remote into the tree and runs transfers as jobs."""

    def __init__(self, context: WindowContext, tree_model: RepoTreeModel) -> None:
        self.context = context
        self.tree_model = tree_model
        self.names: list[str] = []  # the configured remotes, for the tree's Push menu

    def refresh(self) -> None:
        """List every configured remote's models and versions (manifests only), in jobs."""

        def listed(specs: list[remotes.RemoteSpec]) -> None:
            self.names = [r.name for r in specs]
            for spec in specs:
                self._read(spec)

        self.context.runner.submit("Read remotes", lambda _ctx: remotes.list_remotes(), listed)

    def _read(self, spec: remotes.RemoteSpec) -> None:
        def read(_ctx: JobContext) -> tuple[list[remotes.RemoteVersion], str]:
            try:
                return remotes.list_versions(remotes.open_remote(spec)), ""
            except ModelManagerError as e:
                return [], str(e)  # shown on the remote's line; the rest of the tree stays

        def show(result: tuple[list[remotes.RemoteVersion], str]) -> None:
            self.tree_model.populate_remote(spec.name, spec.url, *result)

        self.context.runner.submit(f"Read remote {spec.name}", read, show)

    def push(self, ref: str, remote_name: str) -> JobRecord:
        """Send a version to a remote as a job (progress in bytes in the Jobs tab). It queues on
        the repository's writer lane: label moves the remote has are brought back."""
        ws, context = self.context.ws, self.context

        def run(ctx: JobContext) -> remotes.TransferResult:
            return remotes.push(ws, ref, remotes.open_remote(remote_name), ctx=ctx,
                                lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(r: remotes.TransferResult) -> None:
            where = f" as {r.stored_ref}" if r.stored_ref and r.stored_ref != r.ref else ""
            context.notify(told(
                f"Pushed {r.ref} to {remote_name}{where}: {plural(r.chunks_sent, 'chunk')} "
                f"sent, {r.chunks_skipped} already there", r), 0)  # fmt: skip
            model = r.ref.rsplit("@", 1)[0]  # labels brought back change this model's rows
            back = Changes(models=frozenset({model})) if r.labels_back else Changes()
            context.apply_changes(ws, changes_of(r, back))
            self.refresh()

        return context.runner.submit(f"Push {ref} to {remote_name}", run, done,
                                     writes=ws.repo.root)  # fmt: skip

    def pull(self, remote_name: str, ref: str) -> JobRecord:
        """Fetch a version from a remote into the repository the tabs show, as a job."""
        ws, context = self.context.ws, self.context

        def run(ctx: JobContext) -> remotes.TransferResult:
            return remotes.pull(ws, remotes.open_remote(remote_name), ref, ctx=ctx,
                                lock_timeout=GUI_LOCK_WAIT)  # fmt: skip

        def done(r: remotes.TransferResult) -> None:
            where = f" as {r.stored_ref}" if r.stored_ref and r.stored_ref != r.ref else ""
            context.notify(told(f"Pulled {r.ref} from {remote_name}{where}", r), 0)
            context.apply_changes(ws, changes_of(r))

        return self.context.runner.submit(
            f"Pull {ref} from {remote_name}", run, writes=ws.repo.root, on_done=done
        )


def told(head: str, r: remotes.TransferResult) -> str:
    """A transfer's one line for the status bar: what moved, why its number differs, and
    label moves both sides made differently (the newer won)."""
    parts = [head]
    if r.notice:
        parts.append(r.notice)
    parts += [str(c) for c in r.label_conflicts]
    return shown("; ".join(parts))
