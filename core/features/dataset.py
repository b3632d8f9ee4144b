"""Clip folders and manifests to a feature file in the lineage's HDF5 layout; shards and merging.

A clip set is either a folder with one subfolder per class (class name = folder name, files found
recursively) or a CSV manifest ``path,label[,split]`` (paths relative to the manifest). Splits are
assigned on the full listing, before any file is decoded, so that a failed clip only leaves its own
split and ``--shard i/n`` runs merge into exactly what one run writes.

Clips are pairs: a clip whose audio or picture is missing (no audio track, too short, a sound or
still image in a class folder) is left out of the file and reported with its reason.

Besides the lineage fields, our files hold ``index_{split}`` (each clip's position in the listing,
used to merge shards in order) and ``skipped_path`` / ``skipped_kind`` / ``skipped_reason``
(what was left out, and why).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from core.data import SPLITS, AVDataset, DataError, Split, save_h5, stratified_split
from core.errors import UserError
from core.features.cache import FeatureCache
from core.features.encoders import Encoders
from core.features.errors import NO_AUDIO, NO_VISUAL
from core.features.extract import PADDED, ClipResult, decode_spec, iter_features
from core.features.media import MEDIA_EXTS

MANIFEST_NAME = "manifest.csv"
_SKIPPED = ("skipped_path", "skipped_kind", "skipped_reason")


@dataclass(frozen=True)
class ClipItem:
    path: Path
    label: str
    split: str | None = None  # from a manifest; None: assigned by assign_splits


@dataclass
class Listing:
    items: list[ClipItem]
    class_names: tuple[str, ...]
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, why) not listed
    source: str = ""


def list_clips(clips_dir: str | Path | None, manifest: str | Path | None = None) -> Listing:
    """The clips of a class-per-folder tree, or of a manifest (given, or ``manifest.csv`` found
    in ``clips_dir``). Files whose name is not a media type are ignored and reported."""
    if manifest is None and clips_dir is not None and (Path(clips_dir) / MANIFEST_NAME).is_file():
        manifest = Path(clips_dir) / MANIFEST_NAME
    if manifest is not None:
        return _read_manifest(Path(manifest))
    if clips_dir is None:
        raise UserError("give a clips folder or a manifest")
    return _scan_folder(Path(clips_dir))


def _scan_folder(root: Path) -> Listing:
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    items: list[ClipItem] = []
    ignored: list[tuple[str, str]] = []
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in classes:
        files = sorted(p for p in d.rglob("*") if p.is_file() and not _hidden(p, d))
        for p in files:
            if p.suffix.lower() in MEDIA_EXTS:
                items.append(ClipItem(p, d.name))
            else:
                ignored.append((str(p), f"not a media file name ({p.suffix or 'no extension'})"))
        if not files:
            ignored.append((str(d), "empty class folder"))
    if not items:
        raise UserError(
            f"{root}: no clips found; expected one subfolder per class holding video files, "
            f"or a {MANIFEST_NAME} (path,label[,split])"
        )
    names = tuple(sorted({it.label for it in items}))
    return Listing(items, names, ignored, str(root))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_manifest(path: Path) -> Listing:
    if not path.is_file():
        raise UserError(f"{path}: no such manifest")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip().lower() for c in reader.fieldnames or []]
        if "path" not in fields or "label" not in fields:
            raise UserError(
                f"{path}: the header must name columns path,label[,split]; found {fields}"
            )
        reader.fieldnames = fields
        items: list[ClipItem] = []
        for line, row in enumerate(reader, start=2):
            clip, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not clip or not label:
                raise UserError(f"{path}, line {line}: empty path or label")
            split = (row.get("split") or "").strip().lower() or None
            if "split" in fields and split not in SPLITS:
                raise UserError(
                    f"{path}, line {line}: split {row.get('split')!r} is not one of "
                    f"{', '.join(SPLITS)}"
                )
            p = Path(clip)
            items.append(ClipItem(p if p.is_absolute() else path.parent / p, label, split))
    if not items:
        raise UserError(f"{path}: the manifest lists no clips")
    return Listing(items, tuple(sorted({it.label for it in items})), [], str(path))


def assign_splits(listing: Listing, val: float, test: float, seed: int) -> list[str]:
    """Each item's split: the manifest's, or a seeded stratified draw (test first, then val out
    of the rest, so that the test set does not move when only --val changes)."""
    if all(it.split is not None for it in listing.items):
        return [it.split for it in listing.items]  # type: ignore[misc]
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise UserError(f"--val {val} and --test {test} must be fractions with val + test < 1")
    labels = np.array([listing.class_names.index(it.label) for it in listing.items])
    splits = np.array(["train"] * len(labels), dtype=object)
    rest = np.arange(len(labels))
    if test > 0:
        kept, held = stratified_split(labels, test, seed)
        splits[held] = "test"
        rest = kept
    if val > 0:
        kept, held = stratified_split(labels[rest], val / (1 - test), seed + 1)
        splits[rest[held]] = "val"
    return [str(s) for s in splits]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


@dataclass
class ExtractReport:
    """What a run did: counts and every left-out clip with its reason."""

    listed: int = 0
    written: dict[str, int] = field(default_factory=dict)  # per split
    encoded: int = 0  # clips an encoder ran for
    cached: int = 0  # clips whose features all came from the cache
    padded: int = 0  # clips whose audio was zero-padded to one window
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, reason)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def summary(self, limit: int = 20) -> str:
        total = sum(self.written.values())
        splits = ", ".join(f"{s} {self.written.get(s, 0)}" for s in SPLITS)
        lines = [
            f"wrote {total} of {self.listed} clips ({splits}); encoded {self.encoded}, "
            f"{self.cached} from the cache"
        ]
        if self.padded:
            lines.append(
                f"{self.padded} clips had a little less audio than one encoder window "
                "and were zero-padded"
            )
        if self.skipped:
            kinds = Counter(kind for _, kind, _ in self.skipped)
            lines.append(
                f"skipped {len(self.skipped)}: "
                + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
            )
            lines += [f"  {path}: {reason}" for path, _, reason in self.skipped[:limit]]
            if len(self.skipped) > limit:
                lines.append(
                    f"  ... and {len(self.skipped) - limit} more (see skipped_* in the file)"
                )
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} non-clip entries:")
            lines += [f"  {path}: {reason}" for path, reason in self.ignored[:limit]]
        return "\n".join(lines)


def extract_dataset(
    listing: Listing,
    out: str | Path,
    encoders: Encoders,
    *,
    splits: list[str],
    fps: float = 1.0,
    cache: FeatureCache | None = None,
    workers: int = 1,
    pad_short: bool = False,
    batch_frames: int = 32,
    shard: tuple[int, int] | None = None,
    on_result: Callable[[ClipResult], None] | None = None,
) -> ExtractReport:
    """Encode the listing (or one shard of it) and write the feature file ``out``."""
    if encoders.audio is None or encoders.visual is None:
        raise UserError("a pairs file needs both an audio and a visual encoder")
    order = list(range(len(listing.items)))
    if shard is not None:
        order = order[shard[0] :: shard[1]]
    report = ExtractReport(listed=len(order), ignored=list(listing.ignored))
    kept: dict[str, list[tuple[int, ClipResult]]] = {s: [] for s in SPLITS}
    paths = [listing.items[i].path for i in order]
    results = iter_features(
        paths,
        encoders,
        spec=decode_spec(encoders, fps),
        cache=cache,
        workers=workers,
        pad_short=pad_short,
        batch_frames=batch_frames,
    )
    for result in results:
        if on_result is not None:
            on_result(result)
        index = order[result.index]
        report.encoded += result.encoded
        report.cached += result.error is None and not result.encoded
        why = _why_unpaired(result)
        if why is not None:
            report.skipped.append((result.path, *why))
            continue
        assert result.features is not None
        report.padded += any(n.startswith(PADDED) for n in result.features.notes)
        kept[splits[index]].append((index, result))
    data, indices = _dataset(listing, kept, encoders, fps, shard)
    report.written = {s: len(kept[s]) for s in SPLITS}
    write_features(out, data, indices, report.skipped)
    return report


def _why_unpaired(result: ClipResult) -> tuple[str, str] | None:
    """(kind, reason) for a clip that cannot be a pair, None for a good pair."""
    if result.error is not None:
        return result.error.kind, result.error.reason
    f = result.features
    assert f is not None
    if f.visual is None:
        return NO_VISUAL, _note(f.notes, "picture")
    if f.audio is None:
        return NO_AUDIO, _note(f.notes, "audio", "sound")
    return None


def _note(notes: Iterable[str], *words: str) -> str:
    for n in notes:
        if any(w in n for w in words):
            return n
    return "; ".join(notes) or "missing"


def _dataset(
    listing: Listing,
    kept: dict[str, list[tuple[int, ClipResult]]],
    encoders: Encoders,
    fps: float,
    shard: tuple[int, int] | None,
) -> tuple[AVDataset, dict[str, np.ndarray]]:
    assert encoders.audio is not None and encoders.visual is not None
    da, dv = encoders.audio.dim, encoders.visual.dim
    splits: dict[str, Split] = {}
    indices: dict[str, np.ndarray] = {}
    for s in SPLITS:
        rows = kept[s]
        f = [r.features for _, r in rows]
        splits[s] = Split(
            audio=np.stack([x.audio for x in f]) if f else np.zeros((0, da), np.float32),  # type: ignore[union-attr]
            visual=np.stack([x.visual for x in f]) if f else np.zeros((0, dv), np.float32),  # type: ignore[union-attr]
            labels=np.array(
                [listing.class_names.index(listing.items[i].label) for i, _ in rows], np.int64
            ),
            paths=tuple(str(Path(r.path).resolve()) for _, r in rows),
        )
        indices[s] = np.array([i for i, _ in rows], np.int64)
    attrs = {
        "audio_encoder": encoders.audio.name,
        "audio_encoder_version": encoders.audio.version,
        "visual_encoder": encoders.visual.name,
        "visual_encoder_version": encoders.visual.version,
        "frame_rate": str(fps),
        "clips": listing.source,
    }
    if shard is not None:
        attrs["shard"] = f"{shard[0]}/{shard[1]}"
    data = AVDataset(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=listing.class_names,
        attrs=attrs,
    )
    return data, indices


def write_features(
    out: str | Path,
    data: AVDataset,
    indices: dict[str, np.ndarray],
    skipped: list[tuple[str, str, str]],
) -> None:
    """``core.data.save_h5`` plus our extras, made visible at ``out`` in one rename."""
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    save_h5(tmp, data)
    with h5py.File(tmp, "a") as f:
        for s, idx in indices.items():
            f.create_dataset(f"index_{s}", data=idx.astype(np.int64))
        text = h5py.string_dtype()
        for i, name in enumerate(_SKIPPED):
            column = np.array([row[i] for row in skipped], dtype=object)
            f.create_dataset(name, data=column, dtype=text, shape=(len(skipped),))
    tmp.replace(out)


def merge_shards(parts: list[str | Path], out: str | Path) -> ExtractReport:
    """Merge the files of ``--shard i/n`` runs (all n of them) into one, in listing order."""
    if not parts:
        raise UserError("--merge needs the shard files")
    loaded = [_read_part(Path(p)) for p in parts]
    first = loaded[0]
    n = first["n"]
    for part in loaded[1:]:
        for key in (
            "n",
            "class_names",
            "audio_encoder",
            "visual_encoder",
            "versions",
            "frame_rate",
        ):
            if part[key] != first[key]:
                raise UserError(
                    f"{part['path']}: {key} differs from {first['path']} "
                    f"({part[key]!r} vs {first[key]!r}); these shards are not of one run"
                )
    seen = Counter(p["i"] for p in loaded)
    if dup := [i for i, c in seen.items() if c > 1]:
        raise UserError(f"shard {dup[0]}/{n} given twice")
    if missing := [i for i in range(n) if i not in seen]:
        raise UserError(f"shards missing: {', '.join(f'{i}/{n}' for i in missing)}")
    report = ExtractReport()
    splits: dict[str, Split] = {}
    indices: dict[str, np.ndarray] = {}
    for s in SPLITS:
        idx = np.concatenate([p["index"][s] for p in loaded])
        order = np.argsort(idx, kind="stable")
        paths = [path for p in loaded for path in p["split"][s].paths or ()]
        splits[s] = Split(
            audio=np.concatenate([p["split"][s].audio for p in loaded])[order],
            visual=np.concatenate([p["split"][s].visual for p in loaded])[order],
            labels=np.concatenate([p["split"][s].labels for p in loaded])[order],
            paths=tuple(paths[i] for i in order),
        )
        indices[s] = idx[order]
        report.written[s] = len(order)
    for p in loaded:
        report.skipped += p["skipped"]
    report.listed = sum(report.written.values()) + len(report.skipped)
    attrs = {k: v for k, v in first["attrs"].items() if k != "shard"}
    data = AVDataset(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=first["class_names"],
        attrs=attrs,
    )
    write_features(out, data, indices, sorted(report.skipped))
    return report


def _read_part(path: Path) -> dict:
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        attrs = {k: str(v) for k, v in f.attrs.items()}
        if "shard" not in attrs:
            raise UserError(f"{path}: not a shard file (written without --shard i/n)")
        i, n = parse_shard(attrs["shard"])
        try:
            split = {s: _read_split(f, s) for s in SPLITS}
            index = {s: f[f"index_{s}"][()] for s in SPLITS}
        except KeyError as e:
            raise DataError(f"{path}: missing dataset {e}") from None
        names = tuple(_text(x) for x in f["class_names"][()])
        columns = [[_text(x) for x in f[k][()]] for k in _SKIPPED]
        skipped = list(zip(*columns, strict=True))
    return {
        "path": str(path),
        "i": i,
        "n": n,
        "class_names": names,
        "audio_encoder": attrs.get("audio_encoder"),
        "visual_encoder": attrs.get("visual_encoder"),
        "versions": (attrs.get("audio_encoder_version"), attrs.get("visual_encoder_version")),
        "frame_rate": attrs.get("frame_rate"),
        "attrs": attrs,
        "split": split,
        "index": index,
        "skipped": skipped,
    }


def _read_split(f: h5py.File, s: str) -> Split:
    return Split(
        audio=f[f"audio_{s}"][()],
        visual=f[f"visual_{s}"][()],
        labels=f[f"lab_{s}"][()],
        paths=tuple(_text(x) for x in f[f"path_{s}"][()]),
    )


def _text(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)
