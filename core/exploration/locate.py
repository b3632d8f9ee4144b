"""Where in time: a query of one modality against the segments of the other.

A sound is located in a video's pictures (``a2v``), a picture in its sound (``v2a``): the query's
clip-level features and the clip's segment features (core/data/segments.py) are embedded with a
trained model, whose embedders are per-vector, and compared by cosine. Across a whole split,
:class:`MomentIndex` puts every valid segment into the index clip retrieval uses
(core/evaluation/retrieval.py's GalleryIndex) and returns the best moments, one per clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.data.dataset import positive_attr
from core.data.segments import DEFAULT_SECONDS, Segments, segment_bounds
from core.evaluation.retrieval import GalleryIndex, Kind
from core.training.embedding import embed_features
from core.training.model import AVEmbedder

MODALITIES = ("audio", "visual")


def other(modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be audio or visual, got {modality!r}")
    return "visual" if modality == "audio" else "audio"


def direction(query_modality: str) -> str:
    """``a2v`` for a sound looked for in pictures, ``v2a`` for a picture looked for in sound."""
    return "a2v" if other(query_modality) == "visual" else "v2a"


@dataclass(frozen=True)
class Moment:
    start: float  # seconds
    end: float
    score: float  # cosine similarity
    clip: int = -1  # row of the split (file-wide searches), -1 within one clip

    def as_dict(self) -> dict[str, float]:
        d = asdict(self)
        if self.clip < 0:
            del d["clip"]
        return d


@dataclass(frozen=True)
class Located:
    """A query's similarity to every segment of one clip."""

    direction: str
    segments: tuple[Moment, ...]

    @property
    def scores(self) -> np.ndarray:
        return np.array([m.score for m in self.segments], np.float32)

    @property
    def best(self) -> Moment:
        return self.segments[int(np.argmax(self.scores))]

    def as_dict(self) -> dict:
        return {
            "direction": self.direction,
            "segments": [m.as_dict() for m in self.segments],
            "best": self.best.as_dict(),
        }


def embed_query(
    model: AVEmbedder, features: np.ndarray, modality: str, device: torch.device | str = "cpu"
) -> np.ndarray:
    """[d] L2-normalised embedding of one clip-level feature vector."""
    return embed_features(model, np.asarray(features)[None], modality, device)[0]


def similarity_over_time(
    model: AVEmbedder,
    query: np.ndarray,
    query_modality: str,
    segments: np.ndarray,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """[T] cosine of the query (features of ``query_modality``) with each segment [T, D] of the
    other modality."""
    q = embed_query(model, query, query_modality, device)
    g = embed_features(model, np.asarray(segments), other(query_modality), device)
    return (g @ q).astype(np.float32)


def locate_in_clip(
    model: AVEmbedder,
    query: np.ndarray,
    query_modality: str,
    segments: np.ndarray,
    seconds: float,
    duration: float | None = None,
    device: torch.device | str = "cpu",
) -> Located:
    """The query against every segment [T, D] of the other modality of one clip."""
    scores = similarity_over_time(model, query, query_modality, segments, device)
    bounds = segment_bounds(len(scores), seconds, duration)
    moments = tuple(
        Moment(float(a), float(b), float(s)) for (a, b), s in zip(bounds, scores, strict=True)
    )
    return Located(direction(query_modality), moments)


def sync_matrix(
    model: AVEmbedder,
    audio_segments: np.ndarray,
    visual_segments: np.ndarray,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """[Ta, Tv] cosine of every audio segment with every visual segment of a clip: a bright
    diagonal means sound and picture agree in time."""
    a = embed_features(model, np.asarray(audio_segments), "audio", device)
    v = embed_features(model, np.asarray(visual_segments), "visual", device)
    return (a @ v.T).astype(np.float32)


class MomentIndex:
    """Every valid segment of one modality of a split, searchable with queries of the other."""

    def __init__(
        self,
        model: AVEmbedder,
        segments: Segments,
        modality: str,
        *,
        kind: Kind = "auto",
        device: torch.device | str = "cpu",
    ) -> None:
        x = segments.audio if modality == "audio" else segments.visual
        if x is None:
            raise ValueError(f"these segments have no {modality} features")
        valid = np.arange(x.shape[1])[None, :] < segments.count[:, None]
        self.clip, self.segment = np.nonzero(valid)  # row-major: clip by clip, in time order
        self.modality = modality
        self.seconds = segments.seconds
        self.max_count = int(segments.count.max(initial=1))
        self._model, self._device = model, device
        self.index = GalleryIndex(
            embed_features(model, x[valid], modality, device), kind, normalize=False
        )

    def __len__(self) -> int:
        return len(self.clip)

    def search(self, query: np.ndarray, k: int = 10, per_clip: bool = True) -> list[Moment]:
        """The best ``k`` moments for a query of the other modality (clip-level features), at
        most one per clip unless ``per_clip`` is false."""
        q = embed_query(self._model, query, other(self.modality), self._device)
        wanted = k * self.max_count if per_clip else k
        scores, rows = self.index.search(q[None], min(wanted, len(self)))
        out: list[Moment] = []
        seen: set[int] = set()
        for s, r in zip(scores[0], rows[0], strict=True):
            if r < 0:
                continue
            clip, seg = int(self.clip[r]), int(self.segment[r])
            if per_clip and clip in seen:
                continue
            seen.add(clip)
            start = seg * self.seconds
            out.append(Moment(start, start + self.seconds, float(s), clip))
            if len(out) == k:
                break
        return out


def query_modality_of(path: str, requested: str | None = None) -> str:
    """The modality a query file is searched with: its only one, or ``requested`` (default
    audio) for a video."""
    from core.errors import UserError
    from core.features.media import kind_of

    kind = kind_of(path)
    own = {"audio": "audio", "image": "visual"}.get(kind or "")
    if own is not None:
        if requested not in (None, own):
            raise UserError(
                f"{path}: a{'n image' if own == 'visual' else ' sound'} has no "
                f"{requested} to search with"
            )
        return own
    return requested or "audio"


class _FileEncoder:
    """Encodes files for a checkpoint: with the encoders, frame rate and dimensions of the
    features it was trained on."""

    def __init__(self, checkpoint: str, device: str) -> None:
        from core.errors import UserError
        from core.training.checkpoint import load_checkpoint

        self.path, self.device = checkpoint, device
        self.ckpt = load_checkpoint(checkpoint)
        self.names = {m: self.ckpt.attrs.get(f"{m}_encoder") for m in MODALITIES}
        if not all(self.names.values()):
            raise UserError(
                f"{checkpoint}: the checkpoint does not name the encoders of its features "
                "(trained on a file not made by avexplorer extract), so files cannot be encoded "
                "for it"
            )
        attrs, where = self.ckpt.attrs, f"{checkpoint} (from its features)"
        self.fps = positive_attr(attrs, "frame_rate", 1.0, where)
        self.seconds = positive_attr(attrs, "segment_seconds", DEFAULT_SECONDS, where)

    def encode(self, path: str, modality: str, segments: float | None = None):
        """(ClipFeatures, the clip-level vector of ``modality``) of one file."""
        from core.errors import UserError
        from core.features.extract import encode_path

        kw = {"audio_encoder": None, "visual_encoder": None}
        kw[f"{modality}_encoder"] = self.names[modality]
        f = encode_path(path, device=self.device, fps=self.fps, segments=segments, **kw)
        vector = f.audio if modality == "audio" else f.visual
        if vector is None:
            raise UserError(f"{path}: no {modality} to use ({'; '.join(f.notes) or 'missing'})")
        want = self.ckpt.audio_dim if modality == "audio" else self.ckpt.visual_dim
        if vector.shape[-1] != want:
            raise UserError(
                f"{path}: the {self.names[modality]} encoder gives {vector.shape[-1]}-d "
                f"{modality} features, {self.path} expects {want}-d (is the encoder's package "
                "missing?)"
            )
        return f, vector


def locate_file(
    checkpoint: str,
    clip: str,
    query: str,
    query_modality: str | None = None,
    *,
    seconds: float | None = None,
    device: str = "cpu",
) -> Located:
    """``avexplorer locate``: the query file against every segment of the clip file, both encoded
    with the encoders the checkpoint's features were made with."""
    enc = _FileEncoder(checkpoint, device)
    modality = query_modality_of(query, query_modality)
    target = other(modality)
    seconds = seconds or enc.seconds
    _, q = enc.encode(query, modality)
    f, _ = enc.encode(clip, target, seconds)
    segs = f.audio_seg if target == "audio" else f.visual_seg
    assert segs is not None
    model = enc.ckpt.build_model(device)
    return locate_in_clip(model, q, modality, segs, seconds, f.duration, device)


def moments_in_file(
    checkpoint: str,
    data_path: str,
    query: str,
    query_modality: str | None = None,
    *,
    split: str = "test",
    k: int = 10,
    device: str = "cpu",
) -> tuple[str, list[Moment], tuple[str, ...] | None]:
    """``avexplorer locate MODEL DATA.h5``: the best ``k`` moments (one per clip) for the query
    file among the segments of a feature file's split; (direction, moments, the split's paths)."""
    from core.data.dataset import load_h5
    from core.errors import UserError
    from core.training.checkpoint import data_differences

    enc = _FileEncoder(checkpoint, device)
    cfg = enc.ckpt.config
    data = load_h5(data_path, val_fraction=cfg.data.val_fraction, seed=cfg.seed)
    if diff := data_differences(enc.ckpt, data):
        raise UserError(f"{checkpoint} does not fit {data_path}: {'; '.join(diff)}")
    modality = query_modality_of(query, query_modality)
    target = other(modality)
    part = data.split(split)
    seg = part.segments
    if seg is None or (seg.audio if target == "audio" else seg.visual) is None:
        raise UserError(
            f"{data_path}: the {split} split has no {target} segment features "
            "(extract it with avexplorer extract --segments)"
        )
    _, q = enc.encode(query, modality)
    index = MomentIndex(enc.ckpt.build_model(device), seg, target, device=device)
    return direction(modality), index.search(q, k), part.paths
