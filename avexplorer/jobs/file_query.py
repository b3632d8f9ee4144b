"""Querying with a file: decode it once into features (and a picture), embed as needed.

A video, a sound or an image goes through ``core.features`` with the encoders that made the
dataset's features; an ``.npz`` (keys ``audio``/``visual``) or ``.npy`` (visual) holds features
already. The decoded features stay with the query, so a change of direction or of model only
re-embeds them (milliseconds, on the GUI thread, in ``avexplorer.state.retrieval``) and never
decodes again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError

MEDIA_FILTER = (
    "Video, sound, image or features (*.mp4 *.mkv *.webm *.avi *.mov *.wav *.flac *.ogg *.mp3 "
    "*.m4a *.aac *.opus *.png *.jpg *.jpeg *.bmp *.webp *.gif *.npz *.npy);;All files (*)"
)


def decode_query_file(path: str, attrs: dict[str, str] | None = None) -> tuple[dict, Any]:
    """({modality: features}, picture or None) of a file (runs in a worker thread)."""
    from avexplorer.jobs.thumbnails import preview_image

    feats = file_features(path, attrs or {})
    if not feats:
        raise UserError(f"{Path(path).name}: no audio or visual content could be decoded")
    image = None if Path(path).suffix in (".npz", ".npy") else preview_image(path)
    return feats, image


def file_features(path: str, attrs: dict[str, str]) -> dict[str, np.ndarray]:
    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p) as z:
            return {k: np.asarray(z[k]) for k in ("audio", "visual") if k in z}
    if p.suffix == ".npy":
        return {"visual": np.load(p)}
    try:
        from core.features.extract import encode_path
    except ImportError:
        raise UserError("decoding clips needs core.features, which this install lacks") from None
    # The encoders that made the dataset's features, so the query lands in the same space.
    kwargs = {k: attrs[k] for k in ("audio_encoder", "visual_encoder") if attrs.get(k)}
    clip = encode_path(str(p), **kwargs)
    out = {}
    if getattr(clip, "audio", None) is not None:
        out["audio"] = np.asarray(clip.audio)
    if getattr(clip, "visual", None) is not None:
        out["visual"] = np.asarray(clip.visual)
    return out
