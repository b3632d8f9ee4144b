"""Feature cache: content-keyed entries, atomic writes, and re-runs that encode nothing."""

from __future__ import annotations

import numpy as np
import pytest

from core.features.cache import CacheEntry, FeatureCache, default_cache_dir, file_digest
from core.features.encoders import ColorGrid, Encoders, LogMelStats
from core.features.extract import iter_features
from tests.core.features_fixtures import make_video


class CountingGrid(ColorGrid):
    def __init__(self) -> None:
        super().__init__()
        self.clips = 0

    def features(self, clips):
        self.clips += len(clips)
        return super().features(clips)


class CountingLogMel(LogMelStats):
    def __init__(self) -> None:
        super().__init__()
        self.clips = 0

    def features(self, waveforms):
        self.clips += len(waveforms)
        return super().features(waveforms)


def test_entries_round_trip_and_notes_stand_for_missing_modalities(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put("ab" * 20, "enc-1", CacheEntry(np.arange(4, dtype=np.float32), None, 2.5))
    cache.put("cd" * 20, "enc-1", CacheEntry(None, "no audio track", 3.0))
    hit = cache.get("ab" * 20, "enc-1")
    np.testing.assert_array_equal(hit.vector, np.arange(4))
    assert hit.duration == 2.5 and hit.note is None
    miss = cache.get("cd" * 20, "enc-1")
    assert miss.vector is None and miss.note == "no audio track"
    assert cache.get("ab" * 20, "enc-2") is None  # another encoder (or version) is another key
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind


def test_damaged_entry_reads_as_a_miss(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put("ef" * 20, "k", CacheEntry(np.ones(3, np.float32)))
    (entry,) = tmp_path.rglob("*.npz")
    entry.write_bytes(b"garbage")
    assert cache.get("ef" * 20, "k") is None


def test_digest_follows_content_not_name(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    assert file_digest(a) == file_digest(b)
    b.write_bytes(b"other bytes")
    assert file_digest(a) != file_digest(b)


def test_default_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "avexplorer" / "features"


@pytest.fixture
def clips(tmp_path):
    paths = [make_video(tmp_path / f"c{i}.mp4", 2.5, tone=300 + 100 * i) for i in range(3)]
    silent = make_video(tmp_path / "silent.mp4", 2.5, audio=False)
    return [*paths, silent]


def test_second_run_encodes_nothing_and_a_new_clip_only_itself(tmp_path, clips):
    cache = FeatureCache(tmp_path / "cache")
    encoders = Encoders(CountingLogMel(), CountingGrid())
    first = list(iter_features(clips, encoders, cache=cache))
    assert (encoders.visual.clips, encoders.audio.clips) == (4, 3)
    assert all(r.encoded for r in first)
    assert first[3].features.audio is None and "no audio track" in first[3].features.notes

    again = list(iter_features(clips, encoders, cache=cache))
    assert (encoders.visual.clips, encoders.audio.clips) == (4, 3)  # nothing encoded
    assert not any(r.encoded for r in again)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.features.visual, b.features.visual)
        assert a.features.notes == b.features.notes
        if a.features.audio is not None:
            np.testing.assert_array_equal(a.features.audio, b.features.audio)

    grown = [*clips, make_video(tmp_path / "new.mp4", 2.5, tone=900)]
    list(iter_features(grown, encoders, cache=cache))
    assert (encoders.visual.clips, encoders.audio.clips) == (5, 4)


def test_without_a_cache_everything_is_encoded_each_time(clips):
    encoders = Encoders(CountingLogMel(), CountingGrid())
    list(iter_features(clips, encoders))
    list(iter_features(clips, encoders))
    assert encoders.visual.clips == 8
