"""The change record keeps one entry per model: a model changed in every session does not push
the others out of it (issue 18)."""

from __future__ import annotations

from pathlib import Path

from modelmanager.core.repo.changes import KEEP, ChangeRecorder, read_log


def _session(root: Path, *models: str) -> int:
    """One writer session touching ``models``; the generation it settled as."""
    recorder = ChangeRecorder(root)
    for model in models:
        recorder.touch(model)
    recorder.settle()
    log = read_log(root)
    assert log is not None
    return log.generation


def test_a_model_changed_in_every_session_leaves_room_for_the_others(tmp_path: Path) -> None:
    """A catalog that read up to before ``rare`` changed still learns it from the record,
    after more sessions than the record keeps entries, all changing ``busy``."""
    before = _session(tmp_path, "busy")
    _session(tmp_path, "busy", "rare")
    for _ in range(KEEP + 5):
        _session(tmp_path, "busy")
    log = read_log(tmp_path)
    assert log is not None
    assert log.since(before) == {"busy", "rare"}
    assert [m for _g, m in log.recent] == ["rare", "busy"]


def test_the_record_names_the_newest_change_of_each_model(tmp_path: Path) -> None:
    """Caught up with a model's older change, a catalog is still told of its newer one, and
    caught up with that, of nothing."""
    first = _session(tmp_path, "a", "b")
    second = _session(tmp_path, "a")
    third = _session(tmp_path, "c")
    log = read_log(tmp_path)
    assert log is not None
    assert log.since(0) == {"a", "b", "c"}
    assert log.since(first) == {"a", "c"}
    assert log.since(second) == {"c"}
    assert log.since(third) == set()
