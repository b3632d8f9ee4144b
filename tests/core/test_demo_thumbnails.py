"""The demo's shipped thumbnails: the first pictures of its clips, before any clip is built."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data import demo
from core.features.video import first_frame


def test_shipped_thumbnails_are_what_the_built_clips_show(tmp_path: Path) -> None:
    shipped = demo.demo_thumbnails(tmp_path)
    plans = demo.plan_clips(demo.DemoSpec())
    assert list(shipped) == [str(tmp_path / p.path) for p in plans]
    assert not any(Path(p).exists() for p in shipped)  # nothing was built to get them
    # Rendered again from the sources: the shipped grid is current (JPEG rounding aside).
    rendered = demo.first_frames()
    got = np.stack(list(shipped.values())).astype(np.float32)
    assert got.shape == rendered.shape == (len(plans), 48, 48, 3)
    assert np.abs(got - rendered).mean() < 3
    # A clip built for real shows the same first picture in the app's table.
    picks = [plans[0], plans[len(plans) // 2], plans[-1]]
    demo.build_demo_clips(tmp_path, only=[p.path for p in picks])
    for plan in picks:
        decoded = first_frame(tmp_path / plan.path, demo.THUMBNAIL_SIZE).astype(np.float32)
        assert np.abs(decoded - shipped[str(tmp_path / plan.path)]).mean() < 6


def test_a_missing_or_foreign_grid_gives_no_thumbnails(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "THUMBNAILS_PATH", tmp_path / "absent.jpg")
    assert demo.demo_thumbnails(tmp_path) == {}


def test_one_clip_is_built_alone_in_place_as_the_full_build_makes_it(tmp_path: Path) -> None:
    import pytest

    plan = demo.plan_clips(demo.DemoSpec())[7]
    alone = demo.build_one_clip(tmp_path / "lazy" / plan.path)
    assert alone == tmp_path / "lazy" / plan.path and alone.exists()
    assert sorted(p.name for p in alone.parent.iterdir()) == [alone.name]  # no temporary left
    demo.build_demo_clips(tmp_path / "full", only=[plan.path])
    assert alone.read_bytes() == (tmp_path / "full" / plan.path).read_bytes()
    before = alone.stat().st_mtime_ns
    assert demo.build_one_clip(alone) == alone and alone.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="not a clip of the demo"):
        demo.build_one_clip(tmp_path / "lazy" / "test" / "x.mp4")
