"""Still images (png, jpg, ...) as one-frame clips, and the square resize/crop all frames share."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.features.media import check_nonempty, open_failure


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h) with the shorter side scaled to ``size``: the encoder sees the whole short side and
    loses only the ends of the long one (centre crop), never a squashed picture."""
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[top : top + size, left : left + size])


def load_image(path: str | Path, size: int) -> np.ndarray:
    """An image file as [size, size, 3] uint8 RGB (shorter side scaled, centre-cropped)."""
    import cv2  # OpenCV reads the common still formats without FFmpeg's image2 quirks

    check_nonempty(path)
    raw = np.fromfile(str(path), dtype=np.uint8)  # also handles non-ASCII paths
    img = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if img is None:
        raise open_failure(path, ValueError("OpenCV cannot decode it as an image"))
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    w, h = scaled_size(img.shape[1], img.shape[0], size)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return center_crop(img, size)
