"""A missing pretrained audio encoder is said everywhere it matters, with the command that fixes
it: diagnostics, ``avexplorer --version``, ``extract``'s summary, and a sound query's error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avexplorer.cli import main
from core import diagnostics
from core.errors import UserError
from core.features import encoders as enc_mod
from core.features.encoders import AISFX_INSTALL
from tests.core.features_fixtures import make_clip_folder, make_wav


@pytest.fixture
def no_aisfx(monkeypatch: pytest.MonkeyPatch):
    """aisfx as on a machine where the second set-up command was not run: `import aisfx` fails
    and importlib finds no such module."""
    # Submodules too: once another test imported aisfx.inference, `from aisfx.inference import`
    # would find it in sys.modules without looking at the parent.
    for name in [m for m in sys.modules if m == "aisfx" or m.startswith("aisfx.")] + ["aisfx"]:
        monkeypatch.setitem(sys.modules, name, None)
    enc_mod._audio_encoder.cache_clear()
    yield
    enc_mod._audio_encoder.cache_clear()


def test_missing_aisfx_is_diagnosed_with_the_fix(no_aisfx) -> None:
    status = diagnostics.audio_encoder_status()
    assert not status.available and status.fallback == "logmel-stats"
    problems = diagnostics.encoder_problems()
    assert len(problems) == 1 and AISFX_INSTALL in problems[0] and "512-d" in problems[0]
    assert AISFX_INSTALL in diagnostics.dimension_hint("audio", 128, 512)
    assert AISFX_INSTALL not in diagnostics.dimension_hint("visual", 128, 512)
    text = diagnostics.report()
    assert f"audio encoder aisfx: MISSING, using logmel-stats; fix: {AISFX_INSTALL}" in text


@pytest.mark.skipif(
    not diagnostics.audio_encoder_status().available, reason="aisfx not installed here"
)
def test_an_installed_aisfx_raises_no_problem() -> None:
    assert not any("aisfx" in p for p in diagnostics.encoder_problems())
    assert (
        diagnostics.dimension_hint("audio", 128, 512) == "the dataset was made with other encoders"
    )


def test_version_prints_the_stack_the_encoders_and_the_device(no_aisfx, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("avexplorer ")
    for line in ("torch: ", "numpy: ", "av: ", "opencv-python-headless: ", "device: "):
        assert line in out
    assert f"fix: {AISFX_INSTALL}" in out


def test_extract_summary_names_the_fix_when_it_fell_back(no_aisfx, tmp_path, capsys) -> None:
    clips = make_clip_folder(tmp_path / "clips", n=10, classes=2, size=48)
    out = tmp_path / "f.h5"
    args = ["extract", str(clips), "--out", str(out), "--visual-encoder", "color-grid"]
    with pytest.warns(UserWarning, match="aisfx is not installed"):
        assert main([*args, "--no-cache", "--workers", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "audio logmel-stats (128-d)" in captured.out
    assert f"install it with: {AISFX_INSTALL}" in captured.err


def test_a_sound_query_against_aisfx_features_names_the_fix(no_aisfx, tmp_path) -> None:
    from avexplorer.jobs.file_query import file_features
    from avexplorer.state.retrieval import embed_file_features
    from core.training.config import ModelConfig
    from core.training.model import AVEmbedder

    model = AVEmbedder(512, 192, 10, ModelConfig(hidden=32, dim=16)).eval()
    wav = make_wav(tmp_path / "three.wav", seconds=1.0)
    attrs = {"audio_encoder": "aisfx", "visual_encoder": "color-grid"}  # as the demo records
    with (
        pytest.warns(UserWarning, match="aisfx is not installed"),
        pytest.raises(UserError, match="128 dimensions but the model expects 512") as err,
    ):
        embed_file_features(model, file_features(str(wav), attrs), "audio", wav.name)
    assert AISFX_INSTALL in str(err.value) and Path(wav).name in str(err.value)
