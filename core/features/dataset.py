"""Clip folders and manifests to a feature file in the lineage's HDF5 layout; shards and merging.

A clip set is either a folder with one subfolder per class (class name = folder name, files found
recursively) or a CSV manifest ``path,label[,split]`` (paths relative to the manifest). Clips in
a subfolder named ``_unlabelled``, or on manifest rows with an empty label, become unlabelled
pairs (label -1, always in train; see core/data/dataset.py), not a class.

Clips are pairs: a clip whose audio or picture is missing (no audio track, too short, a sound or
still image in a class folder) is left out of the file and reported with its reason. Splits are
the manifest's, or drawn (seeded, stratified) among the usable clips after encoding, so a class
with bad files still gets its share of val and test. A ``--shard i/n`` run writes a partial file
with its clips unsplit in ``train``; ``merge_shards`` joins all n in listing order and draws the
split exactly as a single run does, so the merged file equals the single run's.

Besides the lineage fields, our files hold ``index_{split}`` (each clip's position in the listing,
used to merge shards in order), ``skipped_path`` / ``skipped_kind`` / ``skipped_reason`` (what was
left out, and why) and, in shard files, ``split_train`` (the manifest's split of each clip).
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from core.atomic import atomic_path, open_h5, refuse_overwrite, write_errors
from core.data.dataset import (
    SPLITS,
    UNLABELLED,
    AVDataset,
    DataError,
    Split,
    positive_attr,
    read_attrs,
    read_ids,
    read_texts,
    read_vectors,
    save_h5,
    stratified_split,
)
from core.errors import UserError
from core.features.cache import FeatureCache
from core.features.encoders import Encoders
from core.features.errors import NO_AUDIO, NO_VISUAL, NOT_FINITE
from core.features.extract import PADDED, ClipResult, decode_spec, iter_features
from core.features.media import MEDIA_EXTS
from core.features.segment_store import SegmentSource, SegmentSpool, shard_segments

MANIFEST_NAME = "manifest.csv"
UNLABELLED_DIR = "_unlabelled"  # its clips are pairs without a label, not a class
_SKIPPED = ("skipped_path", "skipped_kind", "skipped_reason")


@dataclass(frozen=True)
class ClipItem:
    path: Path
    label: str  # "" for an unlabelled clip
    split: str | None = None  # from a manifest; None: assigned by assign_splits


@dataclass
class Listing:
    items: list[ClipItem]
    class_names: tuple[str, ...]
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, why) not listed
    source: str = ""


def list_clips(
    clips_dir: str | Path | None,
    manifest: str | Path | None = None,
    allow_outside: bool = False,
) -> Listing:
    """The clips of a class-per-folder tree, or of a manifest (given, or ``manifest.csv`` found
    in ``clips_dir``). Files whose name is not a media type, unreadable folders and links that
    lead nowhere are left out and reported in ``ignored``.

    A manifest may list each clip once, and only clips inside its own folder tree unless
    ``allow_outside`` (so a shared manifest cannot make extraction read files elsewhere).
    """
    if manifest is None and clips_dir is not None and (Path(clips_dir) / MANIFEST_NAME).is_file():
        manifest = Path(clips_dir) / MANIFEST_NAME
    if manifest is not None:
        return _read_manifest(Path(manifest), allow_outside)
    if clips_dir is None:
        raise UserError("give a clips folder or a manifest")
    return _scan_folder(Path(clips_dir))


def _scan_folder(root: Path) -> Listing:
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: is a file, not a folder of clips")
    items: list[ClipItem] = []
    ignored: list[tuple[str, str]] = []
    try:
        classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as e:
        raise UserError(f"{root}: cannot read this folder ({e.strerror or e})") from None
    seen: dict[Path, Path] = {}  # real file -> the path it was first listed under
    for d in classes:
        if not _utf8(d.name):  # its name is the class name, stored as UTF-8
            ignored.append((_shown(d), NOT_UTF8_NAME))
            continue
        files = _files_under(d, ignored)
        label = "" if d.name == UNLABELLED_DIR else d.name
        for p in files:
            real = p.resolve()
            if real in seen:
                ignored.append((str(p), f"the same file as {seen[real]}, listed once"))
            elif p.suffix.lower() in MEDIA_EXTS:
                seen[real] = p
                items.append(ClipItem(p, label))
            else:
                ignored.append((str(p), f"not a media file name ({p.suffix or 'no extension'})"))
        if not files:
            ignored.append((str(d), "empty class folder"))
    if not items:
        raise UserError(
            f"{root}: no clips found; expected one subfolder per class holding video files, "
            f"or a {MANIFEST_NAME} (path,label[,split])"
        )
    return Listing(items, _class_names(items, root), ignored, str(root.resolve()))


def _class_names(items: list[ClipItem], source: Path) -> tuple[str, ...]:
    names = tuple(sorted({it.label for it in items} - {""}))
    if not names:
        raise UserError(f"{source}: every clip is unlabelled; label at least one clip per class")
    return names


def _files_under(folder: Path, ignored: list[tuple[str, str]]) -> list[Path]:
    """Files below ``folder`` (sorted, hidden ones left out); what cannot be walked (unreadable
    folders, links to folders, links that lead nowhere or in a loop) goes to ``ignored``."""
    files: list[Path] = []

    def unreadable(e: OSError) -> None:
        ignored.append((str(e.filename), f"unreadable folder ({e.strerror or e})"))

    for top, dirs, names in os.walk(folder, onerror=unreadable):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in [d for d in dirs if not _utf8(d)]:
            dirs.remove(d)
            ignored.append((_shown(here / d), NOT_UTF8_NAME))
        for d in dirs:
            if (here / d).is_symlink():  # os.walk does not follow them: say so
                ignored.append((str(here / d), "a link to a folder, not followed"))
        for name in names:
            p = here / name
            if name.startswith("."):
                continue
            if not _utf8(name):
                ignored.append((_shown(p), NOT_UTF8_NAME))
                continue
            if not p.is_file():
                ignored.append((str(p), "a link that leads nowhere (broken or a loop)"))
                continue
            files.append(p)
    return sorted(files)


# A name whose bytes are not UTF-8 (Python keeps them as lone surrogates) cannot be stored in a
# feature file's UTF-8 paths or class names, nor printed as it is.
NOT_UTF8_NAME = "its name is not UTF-8 text; rename it to include it"


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(p: Path) -> str:
    """The path with the bytes that are not UTF-8 escaped (\\xff), as it can be shown and stored."""
    return os.fsencode(p).decode("utf-8", "backslashreplace")


def _read_manifest(path: Path, allow_outside: bool = False) -> Listing:
    # Messages quote no text of the file: a manifest may be any file a user points at.
    if not path.is_file():
        raise UserError(f"{path}: no such manifest")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            items = _manifest_items(path, csv.DictReader(f), allow_outside)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text (UTF-8) CSV manifest") from None
    except csv.Error as e:
        raise UserError(f"{path}: not a readable CSV manifest ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the manifest ({e.strerror or e})") from None
    if not items:
        raise UserError(f"{path}: the manifest lists no clips")
    return Listing(items, _class_names(items, path), [], str(path.resolve()))


def _manifest_items(path: Path, reader: csv.DictReader, allow_outside: bool) -> list[ClipItem]:
    fields = [c.strip().lower() for c in reader.fieldnames or []]
    if "path" not in fields or "label" not in fields:
        raise UserError(
            f"{path}: the first line must be a header naming the columns path,label[,split]"
        )
    reader.fieldnames = fields
    # Inside the tree by the manifest's own text (a link placed in the tree is the folder
    # owner's choice, as in a class folder); the same clip twice by where it really is.
    tree = Path(os.path.normpath(path.parent.absolute()))
    items: list[ClipItem] = []
    lines: dict[Path, int] = {}  # each clip's real path -> the line that listed it
    for line, row in enumerate(reader, start=2):
        clip, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not clip:
            raise UserError(f"{path}, line {line}: empty path")
        split = (row.get("split") or "").strip().lower() or None
        if "split" in fields and split not in SPLITS and not (split is None and not label):
            raise UserError(f"{path}, line {line}: the split must be one of {', '.join(SPLITS)}")
        if not label and split not in (None, "train"):
            raise UserError(
                f"{path}, line {line}: an unlabelled clip (empty label) can only be in train, "
                f"not {split}"
            )
        if not label:
            split = "train" if "split" in fields else None
        p = Path(clip)
        p = p if p.is_absolute() else path.parent / p
        real = p.resolve()
        if not allow_outside and not Path(os.path.normpath(p.absolute())).is_relative_to(tree):
            raise UserError(
                f"{path}, line {line}: the clip lies outside the manifest's folder ({tree}); "
                "pass --allow-outside to read it anyway"
            )
        if real in lines:
            raise UserError(
                f"{path}, lines {lines[real]} and {line}: the same clip is listed twice (it "
                "would land in more than one split or class)"
            )
        lines[real] = line
        items.append(ClipItem(p, label, split))
    return items


@dataclass(frozen=True)
class SplitRule:
    """How clips without a manifest split are split: seeded, stratified, among usable clips."""

    val: float = 0.1
    test: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1):
            raise UserError(
                f"--val {self.val} and --test {self.test} must be fractions with val + test < 1"
            )

    def attrs(self) -> dict[str, str]:
        return {
            "split_val": str(self.val),
            "split_test": str(self.test),
            "split_seed": str(self.seed),
        }

    @classmethod
    def from_attrs(cls, attrs: dict[str, str]) -> SplitRule:
        return cls(float(attrs["split_val"]), float(attrs["split_test"]), int(attrs["split_seed"]))


def assign_splits(labels: np.ndarray, rule: SplitRule) -> np.ndarray:
    """Split name per clip: test drawn first, then val out of the rest, so the test set does not
    move when only --val changes. Deterministic given the labels (in order) and the seed.
    Unlabelled clips (-1) stay in train and are not counted: val and test are drawn from the
    labelled ones."""
    splits = np.full(len(labels), "train", dtype=object)
    rest = np.flatnonzero(labels != UNLABELLED)
    labels = labels[rest]
    if rule.test > 0 and len(labels):
        kept, held = stratified_split(labels, rule.test, rule.seed)
        splits[rest[held]] = "test"
        rest, labels = rest[kept], labels[kept]
    if rule.val > 0 and len(rest):
        _, held = stratified_split(labels, rule.val / (1 - rule.test), rule.seed + 1)
        splits[rest[held]] = "val"
    return splits


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
    seconds: float = 0.0  # decoding + encoding time (models already loaded)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, reason)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def left_out(self) -> str | None:
        """None when every listed clip was written and nothing was ignored; else a headline, a
        blank line and the summary (a front end shows the headline and the rest as details)."""
        if not self.skipped and not self.ignored:
            return None
        head = f"{len(self.skipped)} of {self.listed} clips were left out" if self.skipped else ""
        if self.ignored:
            head += ("; " if head else "") + f"{len(self.ignored)} entries were not clips"
        return f"{head}\n\n{self.summary()}"

    def summary(self, limit: int = 20) -> str:
        total = sum(self.written.values())
        splits = ", ".join(f"{s} {self.written.get(s, 0)}" for s in SPLITS)
        lines = [
            f"wrote {total} of {self.listed} clips ({splits}); encoded {self.encoded}, "
            f"{self.cached} from the cache"
        ]
        if self.seconds > 0:
            rate = self.listed / self.seconds
            lines[0] += f"; {self.seconds:.1f} s, {rate:.2f} clips/s"
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


@dataclass
class Rows:
    """Usable clips in listing order, before they are split."""

    audio: np.ndarray  # [N, Da]
    visual: np.ndarray  # [N, Dv]
    labels: np.ndarray  # [N] class ids
    paths: list[str]
    index: np.ndarray  # [N] position in the listing
    split: list[str]  # the manifest's split per clip, or "" (to be drawn)

    def take(self, sel: np.ndarray) -> Rows:
        return Rows(
            self.audio[sel],
            self.visual[sel],
            self.labels[sel],
            [self.paths[i] for i in sel],
            self.index[sel],
            [self.split[i] for i in sel],
        )


def extract_dataset(
    listing: Listing,
    out: str | Path,
    encoders: Encoders,
    *,
    rule: SplitRule | None = None,
    fps: float = 1.0,
    cache: FeatureCache | None = None,
    workers: int = 1,
    pad_short: bool = False,
    batch_frames: int = 32,
    shard: tuple[int, int] | None = None,
    on_result: Callable[[ClipResult], None] | None = None,
    segments: float | None = None,
    force: bool = False,
) -> ExtractReport:
    """Encode the listing and write the feature file ``out``.

    ``out`` may not be one of the inputs (the manifest, a clip), nor, unless ``force``, a file
    other than an earlier extraction of the same clips (``check_out``).

    With ``segments`` (seconds) the file also holds per-segment features (core/data/segments.py),
    spooled to disk while the clips stream in.

    With ``shard=(i, n)`` only every n-th clip from the i-th is encoded and ``out`` is a partial
    file: its clips all sit in ``train``, unsplit, until ``merge_shards`` splits the union exactly
    as a single run would have.
    """
    if encoders.audio is None or encoders.visual is None:
        raise UserError("a pairs file needs both an audio and a visual encoder")
    check_listing_out(out, listing, force=force)
    rule = rule or SplitRule()
    order = list(range(len(listing.items)))
    if shard is not None:
        order = order[shard[0] :: shard[1]]
    report = ExtractReport(listed=len(order), ignored=list(listing.ignored))
    kept: list[tuple[int, ClipResult]] = []
    with write_errors(out):
        spool = SegmentSpool(out, encoders.audio.dim, encoders.visual.dim) if segments else None
    start = time.perf_counter()
    results = iter_features(
        [listing.items[i].path for i in order],
        encoders,
        spec=decode_spec(encoders, fps),
        cache=cache,
        workers=workers,
        pad_short=pad_short,
        batch_frames=batch_frames,
        segments=segments,
    )
    try:
        for result in results:
            if on_result is not None:
                on_result(result)
            report.encoded += result.encoded
            report.cached += result.error is None and not result.encoded
            why = _why_unpaired(result)
            if why is not None:
                report.skipped.append((result.path, *why))
                continue
            assert result.features is not None
            report.padded += any(n.startswith(PADDED) for n in result.features.notes)
            if spool is not None:  # to disk: a corpus of segments need not fit in memory
                f = result.features
                with write_errors(out):
                    spool.append(f.audio_seg, f.visual_seg)  # type: ignore[arg-type]
                result = replace(result, features=replace(f, audio_seg=None, visual_seg=None))
            kept.append((order[result.index], result))
        report.seconds = time.perf_counter() - start
        if not kept and shard is None:
            raise UserError("no clip could be used, nothing written\n" + report.summary())
        rows = _rows(listing, kept, encoders.audio.dim, encoders.visual.dim)
        attrs = {
            "audio_encoder": encoders.audio.name,
            "audio_encoder_version": encoders.audio.version,
            "visual_encoder": encoders.visual.name,
            "visual_encoder_version": encoders.visual.version,
            "frame_rate": str(fps),
            "clips": listing.source,
            **rule.attrs(),
        }
        source = None
        if spool is not None:
            attrs["segment_seconds"] = str(segments)
            source = SegmentSource(
                spool.rows,
                {int(i): k for k, i in enumerate(rows.index)},  # kept in spool order
                spool.longest,
                (encoders.audio.dim, encoders.visual.dim),
            )
        if shard is not None:
            attrs["shard"] = f"{shard[0]}/{shard[1]}"
            data, indices = _unsplit(rows, listing.class_names, attrs)
        else:
            data, indices = _split(rows, listing.class_names, attrs, rule)
        report.written = {s: len(indices[s]) for s in SPLITS}
        manifest_split = rows.split if shard is not None else None
        write_features(out, data, indices, report.skipped, manifest_split, source)
    finally:
        if spool is not None:
            spool.close()
    return report


def check_out(
    out: str | Path, source: str, inputs: list[tuple[str, Path]], *, force: bool = False
) -> None:
    """Refuse a feature file's ``out`` that is one of its ``inputs`` (never replaced, even with
    ``force``), or that holds anything but an earlier extraction of ``source`` (the clips folder
    or manifest, as the file's ``clips`` attribute records it) unless ``force``: re-running an
    extraction replaces its own output, never another file."""
    refuse_overwrite(out, inputs)
    out = Path(out)
    if force or not out.exists() or out.is_dir():  # a folder: atomic_path says why it cannot be
        return
    try:
        with h5py.File(out, "r") as f:
            made_from = f.attrs.get("clips")
    except (OSError, RuntimeError):  # HDF5's "not a file of mine"
        made_from = None
    if isinstance(made_from, bytes):
        made_from = made_from.decode(errors="replace")
    if made_from is not None and str(made_from) == source:
        return
    held = f"the features of {made_from}" if made_from else "another file"
    raise UserError(
        f"{out}: already holds {held}; pass --force to replace it, or choose another --out"
    )


def check_listing_out(out: str | Path, listing: Listing, *, force: bool = False) -> None:
    """``check_out`` for an extraction of ``listing``: its inputs are the manifest and the clips."""
    source = Path(listing.source)
    inputs = [("the manifest of this extraction", source)] if source.is_file() else []
    inputs += [("one of the clips to extract", item.path) for item in listing.items]
    check_out(out, listing.source, inputs, force=force)


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
    for name in ("audio", "visual", "audio_seg", "visual_seg"):
        x = getattr(f, name, None)
        if x is not None and not np.isfinite(x).all():
            return NOT_FINITE, f"the {name.split('_')[0]} encoder gave NaN or infinite features"
    return None


def _note(notes: Iterable[str], *words: str) -> str:
    for n in notes:
        if any(w in n for w in words):
            return n
    return "; ".join(notes) or "missing"


def _note(notes: Iterable[str], *words: str) -> str:
    for n in notes:
        if any(w in n for w in words):
            return n
    return "; ".join(notes) or "missing"


def _rows(listing: Listing, kept: list[tuple[int, ClipResult]], da: int, dv: int) -> Rows:
    feats = [r.features for _, r in kept]
    return Rows(
        audio=np.stack([f.audio for f in feats]) if feats else np.zeros((0, da), np.float32),  # type: ignore[union-attr]
        visual=np.stack([f.visual for f in feats]) if feats else np.zeros((0, dv), np.float32),  # type: ignore[union-attr]
        labels=np.array(
            [
                listing.class_names.index(listing.items[i].label)
                if listing.items[i].label
                else UNLABELLED
                for i, _ in kept
            ],
            np.int64,
        ),
        paths=[str(Path(r.path).resolve()) for _, r in kept],
        index=np.array([i for i, _ in kept], np.int64),
        split=[listing.items[i].split or "" for i, _ in kept],
    )


def _split(
    rows: Rows, class_names: tuple[str, ...], attrs: dict[str, str], rule: SplitRule
) -> tuple[AVDataset, dict[str, np.ndarray]]:
    """The manifest's splits when it gives them, else a draw among the usable clips (so that a
    class with bad files still gets its share of val and test)."""
    if rows.split and all(rows.split):
        names = np.array(rows.split, dtype=object)
    else:
        names = assign_splits(rows.labels, rule)
    parts = {s: rows.take(np.flatnonzero(names == s)) for s in SPLITS}
    return _dataset(parts, class_names, attrs)


def _unsplit(
    rows: Rows, class_names: tuple[str, ...], attrs: dict[str, str]
) -> tuple[AVDataset, dict[str, np.ndarray]]:
    empty = rows.take(np.zeros(0, np.int64))
    return _dataset({"train": rows, "val": empty, "test": empty}, class_names, attrs)


def _dataset(
    parts: dict[str, Rows], class_names: tuple[str, ...], attrs: dict[str, str]
) -> tuple[AVDataset, dict[str, np.ndarray]]:
    splits = {s: Split(r.audio, r.visual, r.labels, tuple(r.paths)) for s, r in parts.items()}
    data = AVDataset(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=class_names,
        attrs=attrs,
    )
    return data, {s: r.index for s, r in parts.items()}


def write_features(
    out: str | Path,
    data: AVDataset,
    indices: dict[str, np.ndarray],
    skipped: list[tuple[str, str, str]],
    manifest_split: list[str] | None = None,
    segments: SegmentSource | None = None,
) -> None:
    """``core.data.dataset.save_h5`` plus our extras, made visible at ``out`` in one rename.

    The temporary name is unique per write, so two runs writing one ``--out`` cannot clash
    mid-write: the last rename wins and the file is always whole.
    """
    with atomic_path(out) as tmp:
        _write(tmp, data, indices, skipped, manifest_split, segments)


def _write(
    tmp: Path,
    data: AVDataset,
    indices: dict[str, np.ndarray],
    skipped: list[tuple[str, str, str]],
    manifest_split: list[str] | None,
    segments: SegmentSource | None = None,
) -> None:
    save_h5(tmp, data)
    text = h5py.string_dtype()
    with open_h5(tmp, "r+") as f:
        for s, idx in indices.items():
            f.create_dataset(f"index_{s}", data=idx.astype(np.int64))
            if segments is not None:
                segments.write(f, s, idx)
        for i, name in enumerate(_SKIPPED):
            column = np.array([row[i] for row in skipped], dtype=object)
            f.create_dataset(name, data=column, dtype=text, shape=(len(skipped),))
        if manifest_split is not None:  # shard files: the manifest's split of each train row
            f.create_dataset(
                "split_train",
                data=np.array(manifest_split, dtype=object),
                dtype=text,
                shape=(len(manifest_split),),
            )


def merge_shards(parts: list[str | Path], out: str | Path, *, force: bool = False) -> ExtractReport:
    """Merge the files of ``--shard i/n`` runs (all n of them) into what one run writes; ``out``
    as ``check_out`` allows (never one of the parts)."""
    if not parts:
        raise UserError("--merge needs the shard files")
    refuse_overwrite(out, [("one of the --merge parts", Path(p)) for p in parts])
    loaded = [_read_part(Path(p)) for p in parts]
    first = loaded[0]
    check_out(out, first["attrs"].get("clips", ""), [], force=force)
    n = first["n"]
    for part in loaded[1:]:
        for key in ("n", "class_names", "same_run"):
            if part[key] != first[key]:
                raise UserError(
                    f"{part['path']}: {key.replace('_', ' ')} differs from {first['path']} "
                    f"({part[key]!r} vs {first[key]!r}); these shards are not of one run"
                )
    seen = Counter(p["i"] for p in loaded)
    if dup := [i for i, c in seen.items() if c > 1]:
        raise UserError(f"shard {dup[0]}/{n} given twice")
    if missing := [i for i in range(n) if i not in seen]:
        raise UserError(f"shards missing: {', '.join(f'{i}/{n}' for i in missing)}")
    rows = Rows(
        audio=np.concatenate([p["rows"].audio for p in loaded]),
        visual=np.concatenate([p["rows"].visual for p in loaded]),
        labels=np.concatenate([p["rows"].labels for p in loaded]),
        paths=[x for p in loaded for x in p["rows"].paths],
        index=np.concatenate([p["rows"].index for p in loaded]),
        split=[x for p in loaded for x in p["rows"].split],
    )
    rows = rows.take(np.argsort(rows.index, kind="stable"))
    attrs = {k: v for k, v in first["attrs"].items() if k != "shard"}
    data, indices = _split(rows, first["class_names"], attrs, SplitRule.from_attrs(attrs))
    skipped = sorted(x for p in loaded for x in p["skipped"])
    with contextlib.ExitStack() as files:
        source = None
        if "segment_seconds" in attrs:
            opened = [files.enter_context(h5py.File(p["path"], "r")) for p in loaded]
            source = shard_segments(opened, [p["rows"].index for p in loaded])
        write_features(out, data, indices, skipped, segments=source)
    report = ExtractReport(skipped=skipped)
    report.written = {s: len(indices[s]) for s in SPLITS}
    report.listed = len(rows.index) + len(skipped)
    return report


def _read_part(path: Path) -> dict:
    """One ``--shard`` part, every dataset read by the feature-file readers (core/data/dataset.py)
    so that a damaged part is one line naming the dataset."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        attrs = read_attrs(f, path)
        if "shard" not in attrs:
            raise UserError(f"{path}: not a shard file (written without --shard i/n)")
        i, n = parse_shard(attrs["shard"])
        for key, default in (("segment_seconds", 1.0), ("frame_rate", 1.0)):
            positive_attr(attrs, key, default, str(path))
        for key in (
            "audio_train",
            "visual_train",
            "lab_train",
            "path_train",
            "index_train",
            "split_train",
            "class_names",
            *_SKIPPED,
        ):
            if key not in f:
                raise DataError(f"{path}: missing dataset {key!r}; not a part extract wrote")
        rows = Rows(
            audio=read_vectors(f, "audio_train", path),
            visual=read_vectors(f, "visual_train", path),
            labels=read_ids(f, "lab_train", path),
            paths=read_texts(f, "path_train", path),
            index=read_ids(f, "index_train", path),
            split=read_texts(f, "split_train", path),
        )
        names = tuple(read_texts(f, "class_names", path))
        columns = [read_texts(f, k, path) for k in _SKIPPED]
    lengths = {len(rows.audio), len(rows.visual), len(rows.labels), len(rows.paths)}
    if len(lengths | {len(rows.index), len(rows.split)}) > 1 or len({len(c) for c in columns}) > 1:
        raise DataError(f"{path}: its datasets differ in length; not a part extract wrote")
    bad = np.flatnonzero((rows.labels < UNLABELLED) | (rows.labels >= len(names)))
    if len(bad):
        raise DataError(
            f"{path}: lab_train[{bad[0]}] = {rows.labels[bad[0]]} is not one of its "
            f"{len(names)} classes"
        )
    same_run = {k: v for k, v in attrs.items() if k != "shard"}
    return {
        "path": str(path),
        "i": i,
        "n": n,
        "class_names": names,
        "same_run": same_run,
        "attrs": attrs,
        "rows": rows,
        "skipped": list(zip(*columns, strict=True)),
    }
