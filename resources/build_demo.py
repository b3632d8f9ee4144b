"""Build the demo dataset: (re)import its sources, render the clips, extract the shipped features.

    python resources/build_demo.py --sources-from DIR   # DIR from resources/fetch_demo_sources.sh
    python resources/build_demo.py                      # clips to the cache, features to resources
    python resources/build_demo.py --clips-only --clips /tmp/demo

The clips are rendered from ``resources/demo/sources`` with the default seed (``core.data.demo``);
the features come from the same pipeline as ``avexplorer extract`` and are written to
``resources/demo/features.h5`` with clip paths relative to the clip folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.data.dataset import load_h5, save_h5  # noqa: E402
from core.data.demo import (  # noqa: E402
    ALL_VOICES,
    CLASS_NAMES,
    RESOURCES_DIR,
    SOURCES_DIR,
    SPLIT_NAMES,
    DemoSpec,
    demo_clips_dir,
    demo_features_path,
    write_clip_digests,
)
from core.diagnostics import stack_versions  # noqa: E402

# Debian package -> name of its copyright file under resources/licences (the five asterisk core
# sound packages share one identical file)
LICENCE_FILES = {
    "opencv-doc": "opencv-doc.copyright",
    "asterisk-core-sounds-en-wav": "asterisk-core-sounds.copyright",
    "asterisk-prompt-it-menardi-wav": "asterisk-prompt-it-menardi-wav.copyright",
}


def import_sources(src: Path) -> None:
    """Copy digits.png, the voices' digit recordings and the copyright files into resources/."""
    SOURCES_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "digits.png", SOURCES_DIR / "digits.png")
    for voice in ALL_VOICES:
        (SOURCES_DIR / "voices" / voice).mkdir(parents=True, exist_ok=True)
        for d in range(10):
            shutil.copy2(src / "voices" / voice / f"{d}.wav", SOURCES_DIR / "voices" / voice)
    (RESOURCES_DIR / "licences").mkdir(exist_ok=True)
    for package, name in LICENCE_FILES.items():
        shutil.copy2(src / "licences" / f"{package}.copyright", RESOURCES_DIR / "licences" / name)


def extract_features(clips: Path, out: Path) -> None:
    """Run ``avexplorer extract`` on the clips, then store paths relative to the clip folder."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "features.h5"
        cmd = [
            sys.executable,
            "-m",
            "avexplorer",
            "extract",
            str(clips),
            "--manifest",
            str(clips / "manifest.csv"),
            "--out",
            str(raw),
        ]
        print("running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
        data = load_h5(raw)
        if data.val_carved:
            raise SystemExit("extract wrote no val split; the demo needs the manifest's own val")
        splits = {}
        for s in SPLIT_NAMES:
            split = data.split(s)
            if split.paths is None:
                raise SystemExit(f"extract wrote no path_{s}; the demo needs clip paths")
            splits[s] = replace(split, paths=tuple(_relative(p, clips) for p in split.paths))
        if tuple(data.class_names) != CLASS_NAMES:
            raise SystemExit(f"unexpected class names {data.class_names}")
        attrs = {
            **data.attrs,
            "clips": "manifest.csv",  # relative to the clip folder, like the paths
            "demo_spec": DemoSpec().key(),
            "demo_seed": str(DemoSpec().seed),
            # the stack the clips and features were made with (constraints.txt pins it)
            "made_with": json.dumps(made_with(), sort_keys=True),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        save_h5(out, replace(data, **splits, attrs=attrs))


def made_with() -> dict[str, str]:
    """Versions of the stack and the machine: what decides the clips' bytes and the features."""
    import platform

    import av

    versions = stack_versions()
    versions["libavcodec"] = ".".join(map(str, av.library_versions["libavcodec"]))
    versions["machine"] = platform.machine()
    return versions


def _relative(path: str, clips: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        p = p.resolve().relative_to(clips.resolve())
    return p.as_posix()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sources-from",
        type=Path,
        help="a fetch_demo_sources.sh output folder to import into resources/ first",
    )
    parser.add_argument(
        "--clips",
        type=Path,
        help="where to build the clips (default: the cache folder that "
        "core.data.demo.demo_clips_dir uses)",
    )
    parser.add_argument("--clips-only", action="store_true", help="build the clips, no features")
    parser.add_argument(
        "--out",
        type=Path,
        default=demo_features_path(),
        help="feature file to write (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.sources_from:
        import_sources(args.sources_from)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            print(f"clips {done}/{total} ({time.perf_counter() - t0:.0f} s)", flush=True)

    clips = demo_clips_dir(build=True, root=args.clips, progress=progress)
    print(f"clips in {clips}", flush=True)
    if not args.clips_only:
        extract_features(clips, args.out)
        print(f"features in {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
        if args.out == demo_features_path():
            print(f"clip digests in {write_clip_digests(clips)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
