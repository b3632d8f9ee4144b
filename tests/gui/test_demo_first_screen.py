"""Opening the demo on a fresh machine: its thumbnails show before any clip is built."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path


def test_the_demo_table_has_thumbnails_before_its_clips_exist(qtbot, window, tmp_path, monkeypatch):
    from avexplorer.jobs import datasets

    monkeypatch.setenv("AVEXPLORER_DEMO_CLIPS", str(tmp_path / "demo-clips"))
    built = []
    monkeypatch.setattr(window.jobs, "build_demo_clips", lambda: built.append(True))
    window.jobs.open_demo()
    qtbot.waitUntil(lambda: len(window.state.catalog.thumbnails) >= 600, timeout=30_000)
    data = window.state.catalog.dataset
    paths = [p for s in (data.train, data.val, data.test) for p in s.paths]
    assert all(p in window.state.catalog.thumbnails for p in paths)
    assert not any(Path(p).exists() for p in paths)
    assert built  # the clips are still built, in the background, for playback
    image = window.state.catalog.thumbnails[paths[0]]
    assert (image.width(), image.height()) == (48, 48) and not image.isNull()
    assert datasets.demo_thumbnails(str(tmp_path / "elsewhere"))[0]  # keyed by the clips folder


def test_playing_a_demo_clip_not_built_yet_builds_it_alone(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("AVEXPLORER_DEMO_CLIPS", str(tmp_path / "demo-clips"))
    monkeypatch.setattr(window.jobs, "build_demo_clips", lambda: None)  # no full build
    window.jobs.open_demo()
    qtbot.waitUntil(lambda: "clips_dir" in window.state.catalog.dataset.attrs, timeout=30_000)
    path = window.state.catalog.dataset.test.paths[3]
    player = window.retrieval.player
    with qtbot.waitSignal(window.state.signals.clipReady, timeout=60_000) as ready:
        assert "building this demo clip" in player.play(path)
    assert ready.args == [path] and Path(path).exists()
    others = [p for p in window.state.catalog.dataset.test.paths if p != path]
    assert not any(Path(p).exists() for p in others)  # only what was played
    # a clip of another dataset is not built: the player says it is missing
    window.state.set_dataset(replace(window.state.catalog.dataset, attrs={}))
    assert "missing" in player.play(others[0])
