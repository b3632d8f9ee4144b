"""``extract`` keeps the data honest: each clip once, only the clips asked for, no NaN written,
a bad cache entry encoded again, and everything left out said."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avexplorer.cli import main
from core.data.dataset import SPLITS, DataError, load_h5, save_h5
from core.errors import UserError
from core.features.cache import CacheEntry, FeatureCache
from core.features.dataset import extract_dataset, list_clips
from core.features.encoders import load_encoders
from core.features.errors import NOT_FINITE
from tests.core.features_fixtures import make_video

CHEAP = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]
SECRET = "s3cr3t-token-do-not-print"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for name, color in (("bell", (200, 40, 40)), ("drum", (40, 40, 200))):
        (root / name).mkdir()
        for i in range(3):
            make_video(root / name / f"{name}{i}.mp4", 2.0, color=color, tone=440.0 + 50 * i)
    return root


def manifest(folder: Path, *rows: str, name: str = "list.csv") -> Path:
    path = folder / name
    path.write_text("\n".join(["path,label", *rows]) + "\n")
    return path


# --- the manifest: each clip once, inside its own tree, no content echoed -------------------


@pytest.mark.parametrize("second", ["bell/bell0.mp4", "./bell/bell0.mp4", "drum/../bell/bell0.mp4"])
def test_a_clip_listed_twice_is_an_error_naming_both_lines(clips, second):
    path = manifest(clips, "bell/bell0.mp4,bell", "drum/drum0.mp4,drum", f"{second},drum")
    with pytest.raises(UserError, match=r"lines 2 and 4: the same clip is listed twice"):
        list_clips(None, path)


def test_a_clip_outside_the_manifest_tree_is_refused_unless_allowed(clips, tmp_path):
    inner = clips / "bell" / "list.csv"
    inner.write_text("path,label\nbell0.mp4,bell\n../drum/drum0.mp4,drum\n")
    try:
        with pytest.raises(UserError, match="line 3: the clip lies outside the manifest's"):
            list_clips(None, inner)
        assert len(list_clips(None, inner, allow_outside=True).items) == 2
    finally:
        inner.unlink()
    absolute = manifest(tmp_path, f"{clips / 'bell' / 'bell0.mp4'},bell")
    with pytest.raises(UserError, match="--allow-outside"):
        list_clips(None, absolute)


@pytest.mark.parametrize(
    "content",
    [
        f"{SECRET}:x:0:0:root:/root:/bin/bash\n".encode(),  # a file that is no manifest
        b"\x89PNG\r\n\x1a\n\x00\x00" + SECRET.encode(),  # binary, with a NUL
        b"\xff\xfe\xfa" + SECRET.encode(),  # not UTF-8
        f"path,label,split\na.mp4,x,{SECRET}\n".encode(),  # a bad split value
    ],
    ids=["passwd-like", "binary", "not-utf8", "bad-split"],
)
def test_a_bad_manifest_is_one_line_that_quotes_none_of_it(tmp_path, capsys, content):
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    assert main(["extract", "--manifest", str(path), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and SECRET not in err
    assert not (tmp_path / "x.h5").exists()


# --- folders: what cannot be listed is said, each file once -----------------------------------


def test_links_loops_and_unreadable_folders_are_listed_not_dropped(clips, tmp_path, monkeypatch):
    root = tmp_path / "tree"
    (root / "bell" / "sub").mkdir(parents=True)
    (root / "drum").mkdir()
    (root / "bell" / "a.mp4").symlink_to(clips / "bell" / "bell0.mp4")
    (root / "drum" / "copy.mp4").symlink_to(clips / "bell" / "bell0.mp4")  # the same clip again
    (root / "drum" / "b.mp4").symlink_to(clips / "drum" / "drum0.mp4")
    (root / "drum" / "loop.mp4").symlink_to(root / "drum" / "loop.mp4")
    (root / "drum" / "gone.mp4").symlink_to(root / "nowhere.mp4")
    (root / "drum" / "more").symlink_to(clips / "drum")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == root / "bell" / "sub":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    listing = list_clips(root)
    assert [p.path.name for p in listing.items] == ["a.mp4", "b.mp4"]
    why = {Path(p).name: reason for p, reason in listing.ignored}
    assert why["copy.mp4"].startswith("the same file as")
    assert "leads nowhere" in why["loop.mp4"] and "leads nowhere" in why["gone.mp4"]
    assert why["more"] == "a link to a folder, not followed"
    assert why["sub"].startswith("unreadable folder (Permission denied")


def test_names_that_are_not_utf8_are_listed_not_a_crash(clips, tmp_path, capsys):
    root = tmp_path / "tree"
    shutil.copytree(clips, root)
    bad_file = os.fsencode(root / "bell") + b"/\xff\xfeclip.mp4"
    shutil.copy(root / "bell" / "bell0.mp4", bad_file)
    bad_folder = os.fsencode(root) + b"/\xe9t\xe9"  # a class folder named in Latin-1
    os.mkdir(bad_folder)
    shutil.copy(root / "drum" / "drum0.mp4", bad_folder + b"/x.mp4")
    out = tmp_path / "f.h5"
    assert main(["extract", str(root), "--out", str(out), "--no-cache", "--quiet", *CHEAP]) == 0
    printed = capsys.readouterr().out
    assert "\\xff\\xfeclip.mp4: its name is not UTF-8 text" in printed
    assert "\\xe9t\\xe9: its name is not UTF-8 text" in printed
    data = load_h5(out)
    assert sum(len(data.split(s)) for s in SPLITS) == 6 and data.class_names == ("bell", "drum")


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_a_clips_folder_that_is_not_one_is_a_one_line_error(tmp_path, capsys, kind):
    target = tmp_path / "clips"
    if kind == "file":
        target.write_text("x")
    assert main(["extract", str(target), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(target) in err


# --- the cache and the features --------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        b"garbage, not an npz",
        b"PK\x03\x04 a broken zip",
        {"vector": np.ones(7, np.float32)},  # another width
        {"vector": np.full(4, np.nan, np.float32)},
        {"vector": np.array(["text"])},
        # a [S, D] matrix where a clip's [D] vector belongs was written out as 3-D features
        {"vector": np.ones((3, 4), np.float32)},
        {"vector": np.ones(4, np.float32), "duration": np.array([1.0, 2.0])},
        {"vector": np.ones(4, np.float32), "duration": np.array(np.nan)},
        {"vector": np.ones(4, np.float32), "duration": np.array("x")},
        {"note": np.array(["a", "b"])},
    ],
    ids=[
        "garbage",
        "broken-zip",
        "wrong-width",
        "nan",
        "text",
        "a matrix for a vector",
        "two durations",
        "a NaN duration",
        "a text duration",
        "two notes",
    ],
)
def test_an_untrustworthy_cache_entry_reads_as_a_miss(tmp_path, entry):
    cache = FeatureCache(tmp_path)
    path = cache._path("ab" * 20, "enc")
    path.parent.mkdir(parents=True)
    if isinstance(entry, bytes):
        path.write_bytes(entry)
    else:
        np.savez(path, **entry)
    assert cache.get("ab" * 20, "enc", dim=4) is None


def test_a_segment_entry_must_be_a_matrix(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put("ab" * 20, "seg", CacheEntry(np.ones(4, np.float32)))
    assert cache.get("ab" * 20, "seg", dim=4, segments=True) is None
    cache.put("ab" * 20, "seg", CacheEntry(np.ones((2, 4), np.float32)))
    assert cache.get("ab" * 20, "seg", dim=4, segments=True).vector.shape == (2, 4)


def test_the_cache_never_keeps_nan(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put("cd" * 20, "enc", CacheEntry(np.array([1.0, np.nan], np.float32)))
    assert cache.get("cd" * 20, "enc") is None and not list(tmp_path.rglob("*.npz"))


def test_damaged_cache_entries_are_encoded_again(clips, tmp_path, capsys):
    argv = ["extract", str(clips), "--cache", str(tmp_path / "cache"), "--quiet", *CHEAP]
    argv += ["--workers", "1"]
    assert main([*argv, "--out", str(tmp_path / "a.h5")]) == 0
    entries = sorted((tmp_path / "cache").rglob("*.npz"))
    assert entries
    for i, entry in enumerate(entries):  # every other one garbage, the rest the wrong width
        if i % 2:
            entry.write_bytes(b"garbage")
        else:
            np.savez(entry, vector=np.ones(3, np.float32))
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "b.h5")]) == 0
    assert "encoded 6, 0 from the cache" in capsys.readouterr().out
    a, b = load_h5(tmp_path / "a.h5"), load_h5(tmp_path / "b.h5")
    for s in SPLITS:
        assert np.array_equal(a.split(s).audio, b.split(s).audio)
        assert np.array_equal(a.split(s).visual, b.split(s).visual)


def test_nan_features_are_left_out_with_a_reason_and_never_cached(clips, tmp_path, monkeypatch):
    encoders = load_encoders("logmel-stats", "color-grid", "cpu")
    real = encoders.visual.features
    calls = []

    def nan_for_the_first(frames):
        out = [np.asarray(v, np.float32).copy() for v in real(frames)]
        if not calls:
            out[0][:] = np.nan
        calls.append(len(frames))
        return out

    # Through monkeypatch: load_encoders caches the instance, and later tests get it too.
    monkeypatch.setattr(encoders.visual, "features", nan_for_the_first)
    cache = FeatureCache(tmp_path / "cache")
    report = extract_dataset(
        list_clips(clips), tmp_path / "f.h5", encoders, cache=cache, batch_frames=1
    )
    assert [kind for _, kind, _ in report.skipped] == [NOT_FINITE]
    assert "the visual encoder gave NaN" in report.summary()
    data = load_h5(tmp_path / "f.h5")  # load_h5 refuses NaN, so this also checks the file
    assert sum(len(data.split(s)) for s in SPLITS) == 5
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6 + 5  # audio for all, no NaN


def test_no_writer_puts_nan_in_a_feature_file(tiny_data, tmp_path):
    audio = tiny_data.train.audio.copy()
    audio[3, 1] = np.nan
    bad = replace(tiny_data, train=replace(tiny_data.train, audio=audio))
    with pytest.raises(DataError, match=r"audio_train\[3\] holds NaN"):
        save_h5(tmp_path / "x.h5", bad)
    assert list(tmp_path.iterdir()) == []


def test_the_report_says_what_was_left_out(tmp_path, clips):
    root = tmp_path / "tree"
    (root / "bell").mkdir(parents=True)
    (root / "bell" / "a.mp4").symlink_to(clips / "bell" / "bell0.mp4")
    (root / "bell" / "b.mp4").symlink_to(clips / "bell" / "bell1.mp4")
    (root / "bell" / "empty.mp4").write_bytes(b"")
    (root / "bell" / "loop.mp4").symlink_to(root / "bell" / "loop.mp4")
    encoders = load_encoders("logmel-stats", "color-grid", "cpu")
    report = extract_dataset(list_clips(root), tmp_path / "f.h5", encoders)
    text = report.left_out()
    assert text is not None
    head, details = text.split("\n\n", 1)
    assert head == "1 of 3 clips were left out; 1 entries were not clips"
    assert "empty.mp4" in details and "loop.mp4" in details


def test_a_link_placed_inside_the_manifest_tree_is_the_folder_owners_choice(clips, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").symlink_to(clips / "bell" / "bell0.mp4")
    (tmp_path / "in" / "b.mp4").symlink_to(clips / "bell" / "bell0.mp4")
    path = manifest(tmp_path, "in/a.mp4,bell")
    assert [it.path.name for it in list_clips(None, path).items] == ["a.mp4"]
    path = manifest(tmp_path, "in/a.mp4,bell", "in/b.mp4,drum")  # one clip under two names
    with pytest.raises(UserError, match="lines 2 and 3: the same clip is listed twice"):
        list_clips(None, path)


def test_no_file_content_reaches_a_message_or_the_feature_file(clips, tmp_path, capsys):
    root = tmp_path / "tree"
    (root / "bell").mkdir(parents=True)
    for i in range(3):
        (root / "bell" / f"b{i}.mp4").symlink_to(clips / "bell" / f"bell{i}.mp4")
    (root / "bell" / "key.mp4").write_text(f"API_KEY={SECRET}\n")
    out = tmp_path / "f.h5"
    argv = ["extract", str(root), "--out", str(out), "--no-cache", "--quiet", "--workers", "1"]
    assert main([*argv, *CHEAP]) == 0
    captured = capsys.readouterr()
    assert "key.mp4: not a media file: it holds text" in captured.err
    assert SECRET not in captured.out + captured.err
    assert SECRET.encode() not in out.read_bytes()
