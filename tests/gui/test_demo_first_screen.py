"""Opening the demo on a fresh machine: its thumbnails show before any clip is built."""

from __future__ import annotations

from pathlib import Path


def test_the_demo_table_has_thumbnails_before_its_clips_exist(qtbot, window, tmp_path, monkeypatch):
    from avexplorer.jobs import datasets

    monkeypatch.setenv("AVEXPLORER_DEMO_CLIPS", str(tmp_path / "demo-clips"))
    built = []
    monkeypatch.setattr(window.jobs, "build_demo_clips", lambda: built.append(True))
    window.jobs.open_demo()
    qtbot.waitUntil(lambda: len(window.state.thumbnails) >= 600, timeout=30_000)
    data = window.state.dataset
    paths = [p for s in (data.train, data.val, data.test) for p in s.paths]
    assert all(p in window.state.thumbnails for p in paths)
    assert not any(Path(p).exists() for p in paths)
    assert built  # the clips are still built, in the background, for playback
    image = window.state.thumbnails[paths[0]]
    assert (image.width(), image.height()) == (48, 48) and not image.isNull()
    assert datasets.demo_thumbnails(str(tmp_path / "elsewhere"))[0]  # keyed by the clips folder
