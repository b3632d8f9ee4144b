"""Opening datasets: the demo (and building its clips once), folders of clips (extraction).

Long jobs take a ``progress(done, total)`` callback (see ``runner.start``), which also cancels
them: it raises once the task is cancelled, between two clips.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import UserError

Progress = Callable[[int, int], None]


def load_demo() -> tuple[Any, str]:
    """(the demo dataset, "") or, when its features are not installed, a generated stand-in."""
    from dataclasses import replace

    from core.data.dataset import DataError
    from core.data.demo import load_demo as core_load_demo

    try:
        return core_load_demo(), ""
    except DataError as e:
        from core.data.synthetic import make_dataset

        data = make_dataset("ave", seed=0)
        data = replace(
            data,
            source="generated (AVE-shaped)",
            attrs={**data.attrs, "title": "Generated AVE-shaped data"},
        )
        return data, f"Demo features not installed ({e}): opened generated data instead"


def demo_thumbnails(clips_dir: str) -> tuple[dict[str, Any], dict[str, float]]:
    """The demo's shipped thumbnails as ({clip path: QImage}, {}): the first screen shows them
    before any clip file is built (the durations come with the clips)."""
    from avexplorer.jobs.thumbnails import rgb_image
    from core.data.demo import demo_thumbnails as shipped

    return {path: rgb_image(rgb) for path, rgb in shipped(clips_dir).items()}, {}


def build_demo_clip(path: str) -> str:
    """Build one demo clip in place (before the others), for playing it; returns its path."""
    from core.data.demo import build_one_clip

    return str(build_one_clip(path))


def build_demo_clips(progress: Progress | None = None) -> str:
    """Build the demo's clips into their cache folder (first use only); returns the folder."""
    from core.data.demo import demo_clips_dir

    return str(demo_clips_dir(build=True, progress=progress))


def extract_folder(
    folder: str, out_dir: str | Path | None = None, progress: Progress | None = None
) -> Any:
    """Features of every clip in ``folder`` (one subfolder per class): (AVDataset, ExtractReport).

    The feature file goes to ``out_dir`` (default: the user's cache), named after the folder;
    the per-clip feature cache of ``core.features`` makes a second opening fast.
    """
    import hashlib

    from core.data.dataset import load_h5
    from core.features.cache import FeatureCache, default_cache_dir
    from core.features.dataset import SplitRule, extract_dataset, list_clips
    from core.features.encoders import load_encoders

    listing = list_clips(folder)
    total = len(listing.items)
    if not total:
        raise UserError(f"{folder}: no clips found (expected one subfolder of clips per class)")
    if progress is not None:
        progress(0, total)
    encoders = load_encoders()
    root = Path(out_dir) if out_dir is not None else default_cache_dir().parent / "folders"
    root.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:10]
    out = root / f"{Path(folder).name}-{tag}.h5"
    done = [0]

    def on_result(_result: Any) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    report = extract_dataset(
        listing,
        out,
        encoders,
        rule=SplitRule(0.1, 0.2, 0),
        cache=FeatureCache(),
        on_result=on_result,
    )
    return load_h5(out), report
