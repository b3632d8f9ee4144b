"""Media that crashed the decoder, and files it may still crash on: never the end of a command.

Sound of eight channels or more (7.1 and up) used to kill ``extract``, ``locate`` and the app
with a segmentation fault; it now decodes to the average of its channels, in every codec a
surround file comes in. And since a decoder is C code reading whatever a file holds, decoding
runs in other processes: a file it crashes on is reported by name and the batch goes on, in
``extract`` (with one decoding process or several), ``locate``, the app's file query, and its
thumbnails and sound pictures. The crash is a real one (a segmentation fault in the decoding
process, tests/core/features_fixtures.py's ``crashing_prepare``).
"""

from __future__ import annotations

import av
import h5py
import numpy as np
import pytest

from avexplorer.cli import main
from core.features.audio import load_audio
from core.features.errors import ClipError
from tests.core.features_fixtures import make_surround, make_video, surround_gains, tone_wave

CHEAP = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]


def _encodable(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


# (codec, file name, layout, lossless): every container a surround sound commonly comes in.
SURROUND = [
    ("aac", "s71.m4a", "7.1", False),
    ("flac", "s71.flac", "7.1", True),
    ("pcm_s16le", "s71.wav", "7.1", True),
    ("pcm_s16le", "s16ch.wav", "hexadecagonal", True),  # sixteen channels
    ("libopus", "s71.ogg", "7.1", False),
    ("ac3", "s51.mka", "5.1", False),  # AC-3 and E-AC-3 stop at 5.1
    ("eac3", "s51e.mka", "5.1", False),
]


@pytest.mark.parametrize(("codec", "name", "layout", "lossless"), SURROUND)
def test_surround_sound_decodes_to_the_average_of_its_channels(
    tmp_path, codec, name, layout, lossless
):
    if not _encodable(codec):
        pytest.skip(f"this FFmpeg build cannot write {codec}")
    path = make_surround(tmp_path / name, codec, layout, 2.0, sr=48_000)
    channels = av.AudioLayout(layout).nb_channels
    want = tone_wave(2.0, 440.0, 48_000) * surround_gains(channels).mean()
    y = load_audio(path, 48_000)
    assert abs(len(y) - len(want)) <= 2048  # encoder priming and padding
    if lossless:
        assert np.abs(y[: len(want)] - want[: len(y)]).max() < 2e-3
    else:  # lossy: the level says average (not one channel, not a sum)
        rms = float(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(want**2)))
        assert 0.85 < rms < 1.15, rms


@pytest.mark.parametrize("workers", ["1", "2"])
def test_extract_keeps_surround_clips_and_reports_a_crashing_file_by_name(
    tmp_path, capsys, monkeypatch, workers
):
    import core.features.extract as extract
    from tests.core.features_fixtures import crashing_prepare

    monkeypatch.setattr(extract, "prepare", crashing_prepare)
    clips = tmp_path / "clips"
    for label, tone in (("bell", 440.0), ("drum", 880.0)):
        (clips / label).mkdir(parents=True)
        for i in range(3):
            make_video(clips / label / f"{label}{i}.mp4", 2.0, tone=tone + 30 * i)
    make_surround(clips / "bell" / "surround.mp4", "aac", "7.1", 2.0, video=True)
    make_surround(clips / "drum" / "surround.mkv", "flac", "7.1", 2.0, video=True)
    crash = make_video(clips / "drum" / "crash.mp4", 2.0)  # the decoding process dies on it
    out = tmp_path / "f.h5"
    argv = ["extract", str(clips), "--out", str(out), "--no-cache", "--quiet", *CHEAP]
    assert main([*argv, "--workers", workers, "--val", "0.25", "--test", "0.25"]) == 0
    err = capsys.readouterr().err
    assert f"{crash}: the decoder crashed on this file" in err or (
        "crash.mp4" in err and "the decoder crashed on this file" in err
    ), err
    with h5py.File(out) as f:
        paths = {p.decode() for s in ("train", "val", "test") for p in f[f"path_{s}"][()]}
        skipped = [p.decode() for p in f["skipped_path"][()]]
    assert {p.split("/")[-1] for p in paths} == {
        *(f"{c}{i}.mp4" for c in ("bell", "drum") for i in range(3)),
        "surround.mp4",
        "surround.mkv",
    }
    assert skipped == [str(crash)]


def test_locate_names_a_file_the_decoder_crashes_on(tmp_path, capsys, monkeypatch):
    import core.features.extract as extract
    from tests.core.features_fixtures import crashing_prepare

    monkeypatch.setattr(extract, "prepare", crashing_prepare)
    # a checkpoint that names its encoders, as one trained on extract's output does
    clips = tmp_path / "clips"
    for label, tone in (("bell", 440.0), ("drum", 880.0)):
        (clips / label).mkdir(parents=True)
        for i in range(4):
            make_video(clips / label / f"{label}{i}.mp4", 2.0, tone=tone + 30 * i)
    data = tmp_path / "f.h5"
    argv = ["extract", str(clips), "--out", str(data), "--no-cache", "--quiet", *CHEAP]
    assert main([*argv, "--val", "0.25", "--test", "0.25"]) == 0
    run = tmp_path / "run"
    fast = ["--epochs", "1", "--hidden", "8", "--dim", "4", "--threads", "1", "--quiet"]
    assert main(["train", str(data), "--out", str(run), *fast]) == 0
    surround = make_surround(tmp_path / "query.mp4", "aac", "7.1", 2.0, video=True)
    crash = make_video(tmp_path / "crash.mp4", 2.0)
    capsys.readouterr()
    model = str(run / "model.pt")
    assert main(["locate", model, str(surround), "--query", str(surround), "--json"]) == 0
    assert main(["locate", model, str(crash), "--query", str(surround)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"avexplorer locate: error: {crash}: the decoder crashed on this file (SIGSEGV)"]


def test_the_apps_file_query_thumbnails_and_sound_survive_a_decoder_crash(tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    import core.features.audio
    import core.features.extract as extract
    import core.features.video
    from avexplorer.jobs import file_query, thumbnails
    from tests.core import features_fixtures

    monkeypatch.setattr(extract, "prepare", features_fixtures.crashing_prepare)
    monkeypatch.setattr(core.features.video, "thumbnail", features_fixtures.crashing_thumbnail)
    monkeypatch.setattr(core.features.audio, "load_audio", features_fixtures.crashing_load_audio)
    good = [make_video(tmp_path / f"clip{i}.mp4", 2.0) for i in range(2)]
    crash = make_video(tmp_path / "crash.mp4", 2.0)
    surround = make_surround(tmp_path / "surround.mp4", "aac", "7.1", 2.0, video=True)
    paths = [str(good[0]), str(crash), str(surround), str(good[1])]

    images, durations = {}, {}
    for i, d in thumbnails.thumbnails(paths, 32):
        images |= i
        durations |= d
    assert set(images) == {str(good[0]), str(surround), str(good[1])}
    assert set(durations) == set(images)
    with pytest.raises(ClipError, match=r"crash\.mp4: the decoder crashed on this file"):
        thumbnails.spectrogram(str(crash))
    assert thumbnails.spectrogram(str(surround)).shape[0] == thumbnails.SPECTROGRAM_MELS
    attrs = {"audio_encoder": "logmel-stats", "visual_encoder": "color-grid"}
    with pytest.raises(ClipError, match=r"crash\.mp4: the decoder crashed on this file"):
        file_query.file_features(str(crash), attrs)
    assert set(file_query.file_features(str(surround), attrs)) == {"audio", "visual"}


def test_a_script_without_a_main_guard_decodes_in_the_decoding_process(tmp_path):
    """The decoding process does not import the caller's main script again (as multiprocessing's
    would): a plain script, even one read from standard input, can call encode_path."""
    import subprocess
    import sys
    from pathlib import Path

    clip = make_surround(tmp_path / "clip.mp4", "aac", "7.1", 2.0, video=True)
    script = (
        "from core.features.extract import encode_path\n"
        f"f = encode_path({str(clip)!r}, 'logmel-stats', 'color-grid')\n"
        "print(f.audio.shape, f.visual.shape)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    for argv in ([sys.executable, "-"], [sys.executable, str(tmp_path / "script.py")]):
        (tmp_path / "script.py").write_text(script)
        done = subprocess.run(
            argv, input=script, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.count("(") == 2 and "Traceback" not in done.stderr
