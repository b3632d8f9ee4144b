"""An export or a checkpoint save that cannot be written is a dialog, never a traceback, and an
earlier file at that path is left as it was."""

from __future__ import annotations

import errno
import os

import pytest


@pytest.mark.parametrize(
    "export",
    ["checkpoint", "embeddings.npz", "embeddings.csv", "results.csv", "map.png"],
)
def test_a_failed_export_is_a_dialog_and_keeps_the_earlier_file(
    qtbot, loaded, tmp_path, monkeypatch, export
):
    import core.atomic

    loaded.state.retrieval.set_item_query("test", 0)
    target = tmp_path / export.replace("checkpoint", "saved.pt")
    target.write_bytes(b"earlier")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(core.atomic.os, "replace", full)  # the last step of every atomic write
    do = {
        "checkpoint": lambda: loaded.save_checkpoint(str(target)),
        "embeddings.npz": lambda: loaded.export_embeddings(str(target)),
        "embeddings.csv": lambda: loaded.export_embeddings(str(target)),
        "results.csv": lambda: loaded.export_results(str(target)),
        "map.png": lambda: loaded.export_png(loaded.map.plot, str(target)),
    }[export]
    do()
    title, message = loaded.last_error
    assert title in ("Export failed", "Save failed")
    assert "No space left on device" in message and str(target) in message
    assert target.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_an_export_below_a_file_is_a_dialog(qtbot, loaded, tmp_path):
    (tmp_path / "f").write_text("keep")
    loaded.export_embeddings(str(tmp_path / "f" / "e.csv"))
    assert loaded.last_error[0] == "Export failed" and "is a file" in loaded.last_error[1]
    assert (tmp_path / "f").read_text() == "keep"


@pytest.mark.parametrize(
    "export", ["checkpoint", "embeddings.npz", "embeddings.csv", "results.csv", "map.png"]
)
@pytest.mark.parametrize("onto", ["the open dataset", "the checkpoint in use"])
def test_an_export_onto_the_open_dataset_or_checkpoint_is_refused(qtbot, loaded, export, onto):
    from pathlib import Path

    loaded.state.retrieval.set_item_query("test", 0)
    dataset = Path(loaded.state.catalog.dataset.source)
    checkpoint = Path(loaded.current_checkpoint())
    target = dataset if onto == "the open dataset" else checkpoint
    if export == "checkpoint" and target == checkpoint:
        pytest.skip("saving the checkpoint in use onto itself writes nothing: it is saved")
    before = {p: p.read_bytes() for p in (dataset, checkpoint)}
    {
        "checkpoint": lambda: loaded.save_checkpoint(str(target)),
        "embeddings.npz": lambda: loaded.export_embeddings(str(target)),
        "embeddings.csv": lambda: loaded.export_embeddings(str(target)),
        "results.csv": lambda: loaded.export_results(str(target)),
        "map.png": lambda: loaded.export_png(loaded.map.plot, str(target)),
    }[export]()
    title, message = loaded.last_error
    assert title in ("Export failed", "Save failed")
    assert f"that is {onto}" in message
    assert {p: p.read_bytes() for p in before} == before
