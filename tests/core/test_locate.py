"""Locating a query in time: ``avexplorer locate`` on a generated two-part clip, the library calls
(one clip, a sync matrix, the moments of a whole split)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from avexplorer.cli import main
from core.data.dataset import load_h5, save_h5
from core.exploration.locate import MomentIndex, locate_in_clip, sync_matrix
from core.training.checkpoint import load_checkpoint
from tests.core.features_fixtures import _write_audio, make_png, make_video, tone_wave

CHEAP = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]
RED, BLUE = ((200, 40, 40), 440.0), ((40, 40, 200), 1760.0)
FAST = ["--epochs", "40", "--batch-size", "8", "--hidden", "32", "--dim", "16", "--threads", "1"]


def make_sequence(path: Path, parts, fps: int = 10, size: int = 64, sr: int = 22_050) -> Path:
    """A video whose picture and sound change together: ``parts`` = [(seconds, colour, tone)]."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=sr, options={"aac_coder": "fast"})
        sound.layout = "mono"
        ramp = (np.linspace(0, 255, size, dtype=np.float32) * 0.3).astype(np.uint8)
        i = 0
        for seconds, color, _ in parts:  # drawn as make_video draws its clips
            for _ in range(round(seconds * fps)):
                img = np.empty((size, size, 3), np.uint8)
                img[:] = ramp[None, :, None]
                x = (i * 3) % (size // 2)
                img[size // 4 : size // 2, x : x + size // 4] = color
                out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
                i += 1
        out.mux(video.encode())
        y = np.concatenate([tone_wave(seconds, tone, sr) for seconds, _, tone in parts])
        _write_audio(out, sound, y, sr)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A model trained on red-440 Hz and blue-1760 Hz clips of the cheap encoders' features (the
    last epoch's: two val clips are matched perfectly from the second epoch on, so the best-on-val
    checkpoint is a barely trained one)."""
    root = tmp_path_factory.mktemp("locate")
    clips = root / "clips"
    for name, (color, tone) in (("red", RED), ("blue", BLUE)):
        (clips / name).mkdir(parents=True)
        for i in range(8):
            make_video(clips / name / f"{name}{i}.mp4", 2.0 + 0.25 * i, color=color, tone=tone)
    h5 = root / "f.h5"
    args = ["extract", str(clips), "--out", str(h5), "--quiet", "--workers", "1", "--segments"]
    assert main([*args, *CHEAP, "--no-cache"]) == 0
    out = root / "run"
    assert main(["train", str(h5), "--out", str(out), "--quiet", "--seed", "0", *FAST]) == 0
    return root, out / "last.pt", h5


def test_locate_json_finds_the_stretch_of_the_sound(run, tmp_path, capsys):
    _, model, _ = run
    clip = make_sequence(tmp_path / "seq.mp4", [(2.0, RED[0], RED[1]), (3.0, BLUE[0], BLUE[1])])
    for tone, stretch in ((BLUE[1], (2.0, 5.0)), (RED[1], (0.0, 2.0))):
        # a video query is searched with its sound by default; its grey square matches neither
        query = make_video(tmp_path / f"q{tone:g}.mp4", 2.0, color=(128, 128, 128), tone=tone)
        capsys.readouterr()
        assert main(["locate", str(model), str(clip), "--query", str(query), "--json"]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 1
        found = json.loads(out[0])
        assert set(found) == {"direction", "segments", "best"}
        assert found["direction"] == "a2v"
        segs = found["segments"]
        assert [(s["start"], s["end"]) for s in segs] == [(t, t + 1.0) for t in range(5)]
        assert all(-1.0 <= s["score"] <= 1.0 for s in segs)
        assert found["best"] == max(segs, key=lambda s: s["score"])
        centre = (found["best"]["start"] + found["best"]["end"]) / 2
        assert stretch[0] <= centre <= stretch[1], (tone, found)


def test_locate_a_picture_in_the_sound_and_refuse_what_a_query_lacks(run, tmp_path, capsys):
    _, model, _ = run
    clip = make_sequence(tmp_path / "seq.mp4", [(3.0, BLUE[0], BLUE[1]), (2.0, RED[0], RED[1])])
    image = make_png(tmp_path / "red.png", color=RED[0])
    assert main(["locate", str(model), str(clip), "--query", str(image), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["direction"] == "v2a"
    assert len(found["segments"]) == 5
    video = make_video(tmp_path / "q.mp4", 2.0, color=RED[0], tone=RED[1])
    argv = ["locate", str(model), str(clip), "--query", str(video), "--query-modality", "visual"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["direction"] == "v2a"
    assert (
        main(["locate", str(model), str(clip), "--query", str(image), "--query-modality", "audio"])
        == 2
    )
    assert "red.png: an image has no audio to search with" in capsys.readouterr().err


def test_sync_matrix_and_moments_across_a_split(run):
    _, model_path, h5 = run
    ckpt = load_checkpoint(model_path)
    model = ckpt.build_model()
    data = load_h5(h5, val_fraction=ckpt.config.data.val_fraction, seed=ckpt.config.seed)
    seg = data.test.segments
    assert seg is not None
    m = sync_matrix(model, seg.of(0, "audio"), seg.of(0, "visual"))
    assert m.shape == (seg.count[0], seg.count[0])
    # row a of the matrix is audio segment a located among the pictures
    row = locate_in_clip(model, seg.of(0, "audio")[1], "audio", seg.of(0, "visual"), seg.seconds)
    np.testing.assert_allclose(row.scores, m[1], atol=1e-5)
    index = MomentIndex(model, seg, "visual")
    assert len(index) == int(seg.count.sum())
    moments = index.search(data.test.audio[0], k=3)
    assert len({mo.clip for mo in moments}) == len(moments) == min(3, len(data.test))
    assert moments[0].score >= moments[-1].score
    # a query's best moment in a clip is that clip's entry in the file-wide search
    best = locate_in_clip(
        model, data.test.audio[0], "audio", seg.of(moments[0].clip, "visual"), seg.seconds
    ).best
    assert best.start == moments[0].start
    assert best.score == pytest.approx(moments[0].score, abs=1e-5)


def test_locate_in_a_feature_file_lists_the_best_moment_of_each_clip(run, tmp_path, capsys):
    _, model_path, h5 = run
    query = make_video(tmp_path / "q.mp4", 2.0, color=(128, 128, 128), tone=BLUE[1])
    argv = ["locate", str(model_path), str(h5), "--query", str(query), "--k", "3"]
    assert main([*argv, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["direction"] == "a2v"
    moments = found["moments"]
    ckpt = load_checkpoint(model_path)
    data = load_h5(h5, val_fraction=ckpt.config.data.val_fraction, seed=ckpt.config.seed)
    assert len(moments) == min(3, len(data.test))
    assert len({m["clip"] for m in moments}) == len(moments)
    assert [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)
    top = moments[0]
    assert top["path"] == data.test.paths[top["clip"]]
    assert "/blue/" in top["path"]  # the blue clips' pictures go with the blue clips' sound
    # the moment is that clip's best segment for the query, as locating in the clip finds it
    assert main(["locate", str(model_path), top["path"], "--query", str(query), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)["best"]
    assert best["start"] == top["start"]
    assert best["score"] == pytest.approx(top["score"], abs=1e-4)
    # a feature file without segments is refused with the reason
    plain = tmp_path / "plain.h5"
    data_without = load_h5(h5)
    save_h5(plain, replace(data_without, test=replace(data_without.test, segments=None)))
    assert main(["locate", str(model_path), str(plain), "--query", str(query)]) == 2
    assert "no visual segment features" in capsys.readouterr().err
