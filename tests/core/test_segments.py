"""Per-segment features: ``extract --segments`` shapes, masks and caching; 3-D feature files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from avexplorer.cli import main
from core.data.dataset import DataError, load_h5
from core.data.segments import masked_mean, segment_bounds, segment_count
from tests.core.features_fixtures import make_video

CHEAP = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]
LENGTHS = (1.5, 3.2, 4.0, 2.0)  # seconds; 2, 4, 4 and 2 one-second segments


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("segclips")
    for name, color, tone in (("red", (200, 40, 40), 440.0), ("blue", (40, 40, 200), 880.0)):
        (root / name).mkdir()
        for i, seconds in enumerate(LENGTHS):
            make_video(root / name / f"{name}{i}.mp4", seconds, color=color, tone=tone)
    return root


def _extract(clips, out, *extra):
    args = ["extract", str(clips), "--out", str(out), "--quiet", "--workers", "1", *CHEAP]
    assert main([*args, *extra]) == 0
    with h5py.File(out, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": dict(f.attrs)}


def test_segment_count_and_bounds():
    assert segment_count(4.0, 1.0) == 4
    assert segment_count(4.06, 1.0) == 4  # AAC's tail past the picture is not a segment
    assert segment_count(4.3, 1.0) == 5
    assert segment_count(None, 1.0) == 1  # a still image
    assert segment_count(7.2, 2.4) == 3
    np.testing.assert_allclose(segment_bounds(3, 1.0, 2.5), [[0, 1], [1, 2], [2, 2.5]])


def test_extract_segments_shapes_masks_and_clip_means(clips_dir, tmp_path):
    f = _extract(clips_dir, tmp_path / "seg.h5", "--segments", "--test", "0.25", "--val", "0.25")
    assert f["attrs"]["segment_seconds"] == "1.0"
    t = max(max(f[f"seg_count_{s}"]) for s in ("train", "val", "test"))
    assert t == 4
    for s in ("train", "val", "test"):
        count, paths = f[f"seg_count_{s}"], [p.decode() for p in f[f"path_{s}"]]
        n = len(f[f"lab_{s}"])
        assert f[f"audio_seg_{s}"].shape == (n, t, 128)
        assert f[f"visual_seg_{s}"].shape == (n, t, 192)
        for row, path in enumerate(paths):
            seconds = LENGTHS[int(path[-5])]
            assert count[row] == segment_count(seconds, 1.0), path
            c = count[row]
            for m in ("audio", "visual"):
                seg = f[f"{m}_seg_{s}"][row]
                assert np.all(seg[c:] == 0), f"{path}: padding of {m} is not zero"
                assert np.all(np.abs(seg[:c]).sum(axis=1) > 0), f"{path}: empty {m} segment"
            # one frame per one-second segment at 1 fps: the segments' mean is the clip vector
            np.testing.assert_allclose(
                f[f"visual_seg_{s}"][row, :c].mean(axis=0), f[f"visual_{s}"][row], rtol=1e-5
            )
    # the clip-level vectors are those of a run without segments
    plain = _extract(clips_dir, tmp_path / "plain.h5", "--test", "0.25", "--val", "0.25")
    for key in ("audio_train", "visual_train", "audio_test", "path_test"):
        np.testing.assert_array_equal(plain[key], f[key], err_msg=key)
    data = load_h5(tmp_path / "seg.h5")
    seg = data.test.segments
    assert seg is not None and seg.seconds == 1.0
    np.testing.assert_array_equal(seg.count, f["seg_count_test"])
    assert seg.of(0, "audio").shape == (f["seg_count_test"][0], 128)


def test_segments_come_back_from_the_cache_and_the_sound_changes_over_time(clips_dir, tmp_path):
    cache = ["--cache", str(tmp_path / "cache"), "--segments", "0.5"]
    first = _extract(clips_dir, tmp_path / "a.h5", *cache)
    again = _extract(clips_dir, tmp_path / "b.h5", *cache)
    for key in first:
        if key != "attrs":
            np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    assert max(max(first[f"seg_count_{s}"]) for s in ("train", "val", "test")) == 8
    # the fixture's tone decays within each second: half-second segments sound different
    row = int(np.argmax(first["seg_count_train"]))
    a = first["audio_seg_train"][row]
    assert np.abs(a[0] - a[1]).max() > 1.0


def test_segment_shards_merge_into_the_single_run(clips_dir, tmp_path):
    common = ("--segments", "--seed", "2")
    single = _extract(clips_dir, tmp_path / "all.h5", *common)
    parts = [str(tmp_path / f"p{i}.h5") for i in range(2)]
    for i, part in enumerate(parts):
        _extract(clips_dir, part, *common, "--shard", f"{i}/2")
    assert main(["extract", "--merge", *parts, "--out", str(tmp_path / "m.h5")]) == 0
    with h5py.File(tmp_path / "m.h5", "r") as f:
        merged = {k: f[k][()] for k in f}
    for key in single:
        if "seg" in key:
            np.testing.assert_array_equal(single[key], merged[key], err_msg=key)


def _write(path, **arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


def test_3d_feature_files_load_pooled_with_their_segments(tmp_path):
    rng = np.random.default_rng(0)
    n, t = 6, 10
    arrays = {}
    for s in ("train", "test"):
        arrays[f"audio_{s}"] = rng.normal(size=(n, t, 8)).astype(np.float32)
        arrays[f"visual_{s}"] = rng.normal(size=(n, t, 5)).astype(np.float32)
        arrays[f"lab_{s}"] = np.arange(n) % 2
    count = np.array([10, 10, 3, 7, 1, 10])
    arrays["seg_count_test"] = count
    data = load_h5(_write(tmp_path / "ave.h5", **arrays), val_fraction=0.34)
    assert (data.audio_dim, data.visual_dim) == (8, 5)
    test = data.test
    expected = [arrays["audio_test"][i, : count[i]].mean(axis=0) for i in range(n)]
    np.testing.assert_allclose(test.audio, expected, rtol=1e-5)
    np.testing.assert_allclose(test.visual[2], arrays["visual_test"][2, :3].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(test.segments.count, count)
    assert test.segments.of(2, "visual").shape == (3, 5)
    # no counts: every segment counts; the carved val split keeps its clips' segments
    np.testing.assert_allclose(data.train.audio, data.train.segments.audio.mean(axis=1), rtol=1e-5)
    assert len(data.val.segments) == len(data.val) > 0
    np.testing.assert_allclose(masked_mean(arrays["audio_test"], count), test.audio, rtol=1e-6)


def test_bad_segment_counts_name_the_field(tmp_path):
    base = {
        "audio_train": np.zeros((2, 3, 4), np.float32),
        "visual_train": np.zeros((2, 4), np.float32),
        "lab_train": np.array([0, 1]),
        "audio_test": np.zeros((1, 3, 4), np.float32),
        "visual_test": np.zeros((1, 4), np.float32),
        "lab_test": np.array([0]),
    }
    with pytest.raises(DataError, match=r"seg_count_train\[1\] = 4 is out of range 1..3"):
        load_h5(_write(tmp_path / "a.h5", **base, seg_count_train=np.array([1, 4])))
    bad = {**base, "visual_seg_test": np.zeros((1, 2, 4), np.float32)}
    with pytest.raises(DataError, match="test segments must be"):
        load_h5(_write(tmp_path / "b.h5", **bad))
