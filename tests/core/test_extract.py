"""``avexplorer extract`` end to end on generated folders, manifests, shards and merging, and the
one-file ``encode_path`` API."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from avexplorer.cli import main
from core.data.dataset import SPLITS, load_h5
from core.features.errors import ClipError
from core.features.extract import encode_path
from tests.core.features_fixtures import make_png, make_video, make_wav

CHEAP = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]
CLASSES = {
    "bell": ((200, 40, 40), 440.0),
    "drum": ((40, 40, 200), 880.0),
    "wind": ((40, 200, 40), 220.0),
}


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for name, (color, tone) in CLASSES.items():
        (root / name).mkdir()
        for i in range(4):
            make_video(
                root / name / f"{name}{i}.mp4", 2.5 + 0.25 * i, color=color, tone=tone + 20 * i
            )
    (root / "bell" / "empty.mp4").write_bytes(b"")
    (root / "bell" / "readme.mp4").write_text("not a video\n")
    make_video(root / "drum" / "silent.mp4", 2.5, audio=False)
    make_wav(root / "wind" / "gust.wav", 2.5)
    make_png(root / "wind" / "photo.png")
    (root / "wind" / "notes.txt").write_text("ignored")
    return root


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": dict(f.attrs)}


def test_cli_extracts_a_class_folder_with_pretrained_encoders(clips_dir, tmp_path, capsys):
    out = tmp_path / "features.h5"
    argv = ["extract", str(clips_dir), "--out", str(out), "--cache", str(tmp_path / "cache")]
    argv += ["--workers", "1", "--quiet", "--fps", "0.5"]  # fewer frames: a faster test
    assert main(argv) == 0
    data = load_h5(out)
    assert data.class_names == ("bell", "drum", "wind")
    assert (data.audio_dim, data.visual_dim) == (512, 1280)
    assert sum(len(data.split(s)) for s in SPLITS) == 12
    assert data.attrs["audio_encoder"] == "aisfx"
    assert data.attrs["visual_encoder"] == "efficientnet-lite0"
    assert not data.val_carved and len(data.test) >= 3  # each class gives test clips
    for s in SPLITS:  # labels follow the folders
        split = data.split(s)
        for path, label in zip(split.paths, split.labels, strict=True):
            assert f"/{data.class_names[label]}/" in path

    err = capsys.readouterr().err
    for name, words in [
        ("empty.mp4", "empty file"),
        ("readme.mp4", "not a media file"),
        ("silent.mp4", "no audio track"),
        ("gust.wav", "no picture"),
        ("photo.png", "no sound"),
        ("notes.txt", "not a media file name"),
    ]:
        line = next(x for x in err.splitlines() if name in x)
        assert words in line, line
    skipped = _read(out)["skipped_path"]
    assert len(skipped) == 5

    # a re-run reads everything from the cache (the 12 pairs and the 3 one-modality files)
    assert main(argv) == 0
    assert "encoded 0, 15 from the cache" in capsys.readouterr().err
    np.testing.assert_array_equal(load_h5(out).train.audio, data.train.audio)


def test_split_is_seeded_and_stratified(clips_dir, tmp_path):
    def paths(seed, name):
        out = tmp_path / name
        assert (
            main(
                [
                    "extract",
                    str(clips_dir),
                    "--out",
                    str(out),
                    "--no-cache",
                    "--quiet",
                    "--workers",
                    "1",
                    "--seed",
                    str(seed),
                    "--val",
                    "0.25",
                    "--test",
                    "0.25",
                    *CHEAP,
                ]
            )
            == 0
        )
        data = load_h5(out)
        for s in SPLITS:  # every class is in every split (4 clips: 2 train, 1 val, 1 test)
            assert len(set(data.split(s).labels.tolist())) >= 2
        return {s: data.split(s).paths for s in SPLITS}

    a, b, c = paths(0, "a.h5"), paths(0, "b.h5"), paths(1, "c.h5")
    assert a == b
    assert a != c


def test_manifest_gives_labels_and_splits(clips_dir, tmp_path):
    rows = ["path,label,split"]
    for i, (name, split) in enumerate(
        [
            ("bell0", "train"),
            ("bell1", "test"),
            ("drum0", "train"),
            ("drum1", "val"),
            ("drum2", "test"),
        ]
    ):
        rows.append(f"{clips_dir / name[:4] / name}.mp4,{'odd' if i % 2 else 'even'},{split}")
    manifest = tmp_path / "list.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.h5"
    assert (
        main(
            [
                "extract",
                "--manifest",
                str(manifest),
                "--allow-outside",  # the clips lie beside the manifest's folder, not under it
                "--out",
                str(out),
                "--no-cache",
                "--quiet",
                "--workers",
                "1",
                *CHEAP,
            ]
        )
        == 0
    )
    data = load_h5(out)
    assert data.class_names == ("even", "odd")
    assert [len(data.split(s)) for s in SPLITS] == [2, 1, 2]
    assert data.val.paths[0].endswith("drum1.mp4") and data.val.labels.tolist() == [1]


def test_bad_manifest_is_a_one_line_error(tmp_path, capsys):
    manifest = tmp_path / "bad.csv"
    manifest.write_text("file,class\na.mp4,x\n")
    assert main(["extract", "--manifest", str(manifest), "--out", str(tmp_path / "x.h5")]) == 2
    assert "path,label" in capsys.readouterr().err


def test_shards_merge_into_exactly_the_single_run(clips_dir, tmp_path):
    common = [str(clips_dir), "--no-cache", "--quiet", "--seed", "3", *CHEAP]
    assert main(["extract", *common, "--workers", "1", "--out", str(tmp_path / "all.h5")]) == 0
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.h5"
        workers = "2" if i == 0 else "1"  # one shard decodes in a process pool
        assert (
            main(
                ["extract", *common, "--workers", workers, "--shard", f"{i}/3", "--out", str(part)]
            )
            == 0
        )
        parts.append(str(part))
    merged = tmp_path / "merged.h5"
    assert main(["extract", "--merge", *parts[::-1], "--out", str(merged)]) == 0
    single, combined = _read(tmp_path / "all.h5"), _read(merged)
    assert single.keys() == combined.keys()
    for key in single:
        if key == "attrs":
            assert single[key] == combined[key]
        elif key.startswith("skipped"):
            assert sorted(single[key].tolist()) == sorted(combined[key].tolist())
        else:
            np.testing.assert_array_equal(single[key], combined[key], err_msg=key)


def test_merge_refuses_an_incomplete_set_of_shards(clips_dir, tmp_path, capsys):
    part = tmp_path / "p0.h5"
    assert (
        main(
            [
                "extract",
                str(clips_dir),
                "--no-cache",
                "--quiet",
                "--workers",
                "1",
                "--shard",
                "0/2",
                "--out",
                str(part),
                *CHEAP,
            ]
        )
        == 0
    )
    assert main(["extract", "--merge", str(part), "--out", str(tmp_path / "m.h5")]) == 2
    assert "shards missing: 1/2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.attrs.__setitem__("frame_rate", "nan"),
            "frame_rate = 'nan' is not a positive",
        ),
        (
            lambda f: _replace_dataset(f, "path_train", [b"\xff.mp4"] * len(f["lab_train"])),
            r"path_train[0] is not UTF-8 text",
        ),
        (
            lambda f: _replace_dataset(f, "lab_train", [b"x"] * len(f["lab_train"])),
            "lab_train has non-numeric dtype",
        ),
        (lambda f: _replace_dataset(f, "audio_train", np.zeros(3)), "audio_train must be a 2-D"),
        (lambda f: f.__delitem__("index_train"), "missing dataset 'index_train'"),
        (
            lambda f: _replace_dataset(f, "lab_train", np.full(len(f["lab_train"]), 99)),
            "lab_train[0] = 99 is not one of its",
        ),
    ],
    ids=["frame-rate", "path-not-utf8", "text-labels", "1-d-audio", "no-index", "label-past"],
)
def test_a_damaged_part_is_one_line_when_merged(clips_dir, tmp_path, capsys, change, message):
    common = [str(clips_dir), "--no-cache", "--quiet", "--workers", "1", *CHEAP]
    parts = []
    for i in range(2):
        parts.append(tmp_path / f"p{i}.h5")
        assert main(["extract", *common, "--shard", f"{i}/2", "--out", str(parts[-1])]) == 0
    with h5py.File(parts[1], "r+") as f:
        change(f)
    capsys.readouterr()
    merged = tmp_path / "m.h5"
    assert main(["extract", "--merge", *map(str, parts), "--out", str(merged)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not merged.exists()


def _replace_dataset(f, key, value):
    del f[key]
    f[key] = np.asarray(value)


def test_folder_without_clips_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty_class").mkdir()
    assert main(["extract", str(tmp_path), "--out", str(tmp_path / "x.h5"), *CHEAP]) == 2
    assert "no clips found" in capsys.readouterr().err


def test_encode_path_for_a_video_a_sound_and_an_image(clips_dir):
    video = encode_path(
        clips_dir / "bell" / "bell0.mp4", "aisfx", "efficientnet-lite0", device="cpu"
    )
    assert video.audio.shape == (512,) and video.visual.shape == (1280,)
    assert 2.4 < video.duration < 2.7
    sound = encode_path(
        clips_dir / "wind" / "gust.wav", "aisfx", "efficientnet-lite0", device="cpu"
    )
    assert sound.visual is None and sound.audio.shape == (512,)
    image = encode_path(
        clips_dir / "wind" / "photo.png", "aisfx", "efficientnet-lite0", device="cpu"
    )
    assert image.audio is None and image.visual.shape == (1280,) and image.duration is None
    # the same clip through the batch path and the one-file path gives the same vectors
    again = encode_path(
        clips_dir / "bell" / "bell0.mp4", "aisfx", "efficientnet-lite0", device="cpu"
    )
    np.testing.assert_allclose(again.visual, video.visual, rtol=1e-5)
    with pytest.raises(ClipError, match=r"readme\.mp4"):
        encode_path(clips_dir / "bell" / "readme.mp4", "logmel-stats", "color-grid")


def test_a_folder_of_only_bad_files_writes_nothing_and_says_why(tmp_path, capsys):
    (tmp_path / "clips" / "x").mkdir(parents=True)
    (tmp_path / "clips" / "x" / "a.mp4").write_bytes(b"")
    out = tmp_path / "x.h5"
    argv = ["extract", str(tmp_path / "clips"), "--out", str(out), "--no-cache", "--workers", "1"]
    assert main([*argv, *CHEAP]) == 2
    err = capsys.readouterr().err
    assert "no clip could be used" in err and "a.mp4: empty file" in err
    assert not out.exists()


def test_short_audio_is_padded_from_half_a_window_and_refused_below(tmp_path):
    from core.features.encoders import ColorGrid, Encoders, LogMelStats
    from core.features.extract import iter_features

    class TwoSecondWindow(LogMelStats):
        window_seconds = 2.0

    clips = [make_video(tmp_path / f"{s}.mp4", s) for s in (0.5, 1.5, 2.5)]
    encoders = Encoders(TwoSecondWindow(), ColorGrid())
    tiny, half, full = (r.features for r in iter_features(clips, encoders))
    assert tiny.audio is None and "audio too short" in tiny.notes[0] and tiny.visual is not None
    assert half.audio is not None and half.notes[0].startswith("audio padded")
    assert full.audio is not None and full.notes == ()
    padded = [r.features for r in iter_features(clips, encoders, pad_short=True)]
    assert padded[0].audio is not None and padded[0].notes[0].startswith("audio padded")


def test_a_decoder_crash_costs_one_file_not_the_batch(tmp_path, monkeypatch):
    import core.features.extract as extract
    from core.features.encoders import ColorGrid, Encoders, LogMelStats
    from tests.core.features_fixtures import crashing_prepare

    monkeypatch.setattr(extract, "prepare", crashing_prepare)
    paths = [make_video(tmp_path / f"{name}.mp4", 1.0) for name in ("a", "crash", "b", "c")]
    results = list(extract.iter_features(paths, Encoders(LogMelStats(), ColorGrid()), workers=2))
    assert [r.error is None for r in results] == [True, False, True, True]
    assert "crashed" in str(results[1].error) and str(paths[1]) in str(results[1].error)


def test_unlabelled_folder_and_empty_manifest_labels_become_unlabelled_train_pairs(
    clips_dir, tmp_path
):
    root = tmp_path / "clips"
    for name in ("bell", "drum"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{name}{i}.mp4").symlink_to(clips_dir / name / f"{name}{i}.mp4")
    (root / "_unlabelled").mkdir()
    for i in range(2):
        (root / "_unlabelled" / f"wind{i}.mp4").symlink_to(clips_dir / "wind" / f"wind{i}.mp4")
    common = ["--no-cache", "--quiet", "--workers", "1", "--val", "0.34", "--test", "0.34", *CHEAP]
    out = tmp_path / "folder.h5"
    assert main(["extract", str(root), "--out", str(out), *common]) == 0
    data = load_h5(out)
    assert data.class_names == ("bell", "drum")  # not a class called _unlabelled
    unlabelled = [p for p, y in zip(data.train.paths, data.train.labels, strict=True) if y == -1]
    assert sorted(p.rsplit("/", 1)[1] for p in unlabelled) == ["wind0.mp4", "wind1.mp4"]
    assert (data.val.labels >= 0).all() and (data.test.labels >= 0).all()
    assert len(data.test) == 2  # one per class, drawn among the labelled clips only

    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "path,label\n"
        + "".join(f"{root / 'bell' / f'bell{i}.mp4'},bell\n" for i in range(3))
        + "".join(f"{root / 'drum' / f'drum{i}.mp4'},drum\n" for i in range(3))
        + f"{root / '_unlabelled' / 'wind0.mp4'},\n"
    )
    out = tmp_path / "manifest.h5"
    assert main(["extract", "--manifest", str(manifest), "--out", str(out), *common]) == 0
    data = load_h5(out)
    assert data.class_names == ("bell", "drum")
    assert (data.train.labels == -1).sum() == 1


def test_an_unlabelled_manifest_row_outside_train_is_a_one_line_error(tmp_path, capsys):
    manifest = tmp_path / "bad.csv"
    manifest.write_text("path,label,split\na.mp4,x,train\nb.mp4,,test\n")
    assert main(["extract", "--manifest", str(manifest), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "unlabelled" in err


def test_a_decoding_thread_gives_what_decoding_processes_give_in_input_order(clips_dir):
    from core.features.encoders import ColorGrid, Encoders, LogMelStats
    from core.features.extract import iter_features

    paths = sorted(p for p in clips_dir.rglob("*") if p.is_file())
    encoders = Encoders(LogMelStats(), ColorGrid())
    threaded = list(iter_features(paths, encoders, workers=1, batch_frames=4))
    pooled = list(iter_features(paths, encoders, workers=2, batch_frames=4))
    assert [r.path for r in threaded] == [str(p) for p in paths]
    for a, b in zip(threaded, pooled, strict=True):
        assert (a.index, a.path, str(a.error)) == (b.index, b.path, str(b.error))
        if a.features is not None:
            for x, y in (
                (a.features.audio, b.features.audio),
                (a.features.visual, b.features.visual),
            ):
                assert (x is None) == (y is None)
                if x is not None:
                    np.testing.assert_array_equal(x, y)
    assert any(r.error is not None for r in threaded) and any(r.features for r in threaded)


def test_stopping_an_extraction_early_stops_its_threads(clips_dir):
    """A cancelled run (the app's cancel closes the iterator) leaves no decoding or encoding
    thread working behind it."""
    import threading

    from core.features.encoders import ColorGrid, Encoders, LogMelStats
    from core.features.extract import iter_features

    def ours() -> list[str]:
        names = ("decode", "encode-")
        return [t.name for t in threading.enumerate() if t.name.startswith(names)]

    before = ours()
    paths = sorted(p for p in clips_dir.rglob("*.mp4") if p.stat().st_size) * 4
    run = iter_features(paths, Encoders(LogMelStats(), ColorGrid()), batch_frames=2)
    first = [next(run) for _ in range(3)]
    assert [r.index for r in first] == [0, 1, 2]
    assert len(ours()) > len(before)  # the pipeline's threads are at work
    run.close()
    assert ours() == before
