"""Training from a train split left on disk: the same batches and losses as from memory, exact
resume mid-epoch, reads bounded to the steps' own rows, and the features checked as read."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from core.data.dataset import DataError, load_h5, save_h5
from core.data.stream import BatchFeed, DiskFeatures, column_moments
from core.data.synthetic import make_dataset
from core.training import batches, loop
from core.training.batches import BatchSampler, epoch_order
from core.training.config import method_config
from core.training.control import TrainControl
from core.training.events import RunFinished, StepEnd
from core.training.loop import train

OVERRIDES = {
    "optim.epochs": 2,
    "optim.batch_size": 16,
    "model.hidden": 32,
    "model.dim": 16,
    "threads": 1,
    "snapshot_every": 0,
}


@pytest.fixture
def small_windows(monkeypatch):
    """Windows of 4 blocks of 8 pairs, so that a small file takes the block-shuffle path, and
    groups of 2 batches, so that the reader thread reads ahead many times an epoch."""
    monkeypatch.setattr(batches, "BLOCK_ROWS", 8)
    monkeypatch.setattr(batches, "WINDOW_BLOCKS", 4)
    monkeypatch.setattr(loop, "FEED_ROWS", 32)


@pytest.fixture(scope="module")
def h5_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "tiny.h5"
    save_h5(path, make_dataset("tiny", seed=0))
    return path


def _config(method: str, **extra):
    cfg = method_config("psd" if method == "psd-few" else method).replace(**(OVERRIDES | extra))
    if method == "psd-few":
        cfg = cfg.replace(**{"data.label_fraction": 0.25})
    return cfg


def _losses(events) -> list[dict[str, float]]:
    return [e.losses for e in events if isinstance(e, StepEnd)]


def test_block_shuffle_is_a_permutation_drawn_from_windows(small_windows):
    assert sorted(epoch_order(3, 1, 100).numpy()) == list(range(100))  # a last short block
    order = epoch_order(3, 1, 96).numpy()
    assert sorted(order) == list(range(96))
    # Each run of 32 consecutive positions (a window) holds 4 whole blocks of 8 rows.
    for w in range(0, 96, 32):
        blocks, counts = np.unique(order[w : w + 32] // 8, return_counts=True)
        assert len(blocks) == 4 and (counts == 8).all()
    assert not np.array_equal(order, epoch_order(3, 2, 96).numpy())
    assert np.array_equal(
        epoch_order(0, 0, 20).numpy(),
        torch.randperm(20, generator=torch.Generator().manual_seed(0)).numpy(),
    )  # a small split: one shuffle


@pytest.mark.parametrize("method", ["psd", "psd-few", "triplet", "infonce"])
def test_streaming_gives_the_in_memory_batches_and_losses(small_windows, h5_file, tmp_path, method):
    cfg = _config(method)
    memory = list(train(cfg, load_h5(h5_file), out_dir=tmp_path / "memory"))
    disk = load_h5(h5_file, lazy_train=True)
    assert isinstance(disk.train.audio, DiskFeatures)
    streamed = list(
        train(cfg.replace(**{"data.stream_above_mb": "0"}), disk, out_dir=tmp_path / "disk")
    )
    a, b = _losses(memory), _losses(streamed)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == pytest.approx(y[k], rel=1e-4, abs=1e-6), k
    # The batches were read from the file: more rows than the two whole passes at the start
    # (the data's fingerprint, the standardisation's moments).
    assert disk.train.audio.rows_read == disk.train.visual.rows_read > 2 * len(disk.train)


def test_small_files_stay_in_memory_by_default(h5_file, tmp_path):
    disk = load_h5(h5_file, lazy_train=True)
    list(train(_config("psd", **{"optim.epochs": 1}), disk, out_dir=tmp_path / "run"))
    # "auto": read once whole (the fingerprint, the standardisation, the copy), never per batch
    assert disk.train.audio.reads <= 3 * (len(disk.train) // 16_384 + 1)


def test_resume_mid_epoch_from_a_stream(small_windows, h5_file, tmp_path):
    cfg = _config("psd-few", **{"data.stream_above_mb": "0"})
    full = _losses(train(cfg, load_h5(h5_file, lazy_train=True), out_dir=tmp_path / "full"))
    control = TrainControl()
    first = []
    for e in train(
        cfg, load_h5(h5_file, lazy_train=True), out_dir=tmp_path / "cut", control=control
    ):
        if isinstance(e, StepEnd):
            first.append(e.losses)
            if e.epoch == 2 and e.step == 3:
                control.stop()
    rest = list(
        train(
            cfg,
            load_h5(h5_file, lazy_train=True),
            out_dir=tmp_path / "cut",
            resume_from=tmp_path / "cut" / "last.pt",
        )
    )
    assert isinstance(rest[-1], RunFinished) and not rest[-1].stopped
    assert first + _losses(rest) == full


def test_a_process_reads_only_its_share_of_each_batch(small_windows, h5_file):
    """Under torchrun each rank embeds positions r, r + w, ... of a batch; its reader reads
    those rows and no others."""
    data = load_h5(h5_file, lazy_train=True)
    sampler = BatchSampler(np.ones(len(data.train), bool), "psd", 16, 0.25, seed=0)
    steps = sampler.steps_per_epoch
    read_by = []
    for rank in range(2):
        audio = DiskFeatures(h5_file, "audio_train")
        visual = DiskFeatures(h5_file, "visual_train")

        def positions(g, rank=rank):
            return sampler.batch(g // steps, g % steps)[rank::2].numpy()

        feed = BatchFeed(audio, visual, positions, steps, group=2)
        try:
            for g in range(steps):
                got_a, got_v = feed.batch(g)
                np.testing.assert_array_equal(got_a, data.train.audio.read(positions(g)))
                np.testing.assert_array_equal(got_v, data.train.visual.read(positions(g)))
        finally:
            feed.close()
        mine = np.unique(np.concatenate([positions(g) for g in range(steps)]))
        assert audio.rows_read == visual.rows_read == len(mine)
        read_by.append(mine)
    assert not np.intersect1d(*read_by).size  # one epoch: every pair once, in one rank's share
    assert len(read_by[0]) + len(read_by[1]) == len(data.train)


def test_disk_features_read_what_memory_holds(h5_file):
    memory = load_h5(h5_file)
    disk = load_h5(h5_file, lazy_train=True)
    x = disk.train.audio
    np.testing.assert_array_equal(x.load(), memory.train.audio)
    idx = np.array([5, 1, 5, 30, 0])
    np.testing.assert_array_equal(x[idx], memory.train.audio[idx])
    np.testing.assert_array_equal(x[3:9], memory.train.audio[3:9])
    assert disk.fingerprint == memory.fingerprint
    mean, std = column_moments(x)
    np.testing.assert_allclose(mean, memory.train.audio.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, memory.train.audio.std(axis=0, ddof=1), rtol=1e-4)


def test_a_val_split_carved_from_a_train_split_on_disk_stays_there(tmp_path):
    data = make_dataset("tiny", seed=0)
    path = tmp_path / "noval.h5"
    save_h5(path, data, include_val=False)
    memory, disk = load_h5(path), load_h5(path, lazy_train=True)
    assert isinstance(disk.val.audio, DiskFeatures)
    np.testing.assert_array_equal(disk.val.audio.load(), memory.val.audio)
    np.testing.assert_array_equal(disk.val.labels, memory.val.labels)
    np.testing.assert_array_equal(disk.train.visual.load(), memory.train.visual)
    assert disk.fingerprint == memory.fingerprint


def test_a_nan_in_a_streamed_split_is_a_data_error_naming_the_row(tmp_path):
    path = tmp_path / "nan.h5"
    save_h5(path, make_dataset("tiny", seed=0))
    with h5py.File(path, "r+") as f:
        f["visual_train"][7, 2] = np.nan
    data = load_h5(path, lazy_train=True)  # opening reads no features
    with pytest.raises(DataError, match=r"visual_train\[7, 2\]"):
        list(train(_config("psd"), data))


def test_memory_limit_setting_is_checked():
    with pytest.raises(ValueError, match="stream_above_mb"):
        _config("psd", **{"data.stream_above_mb": "lots"})
    assert torch.is_tensor(epoch_order(0, 0, 5))


def test_a_run_scores_a_val_split_left_on_disk_as_one_in_memory(tmp_path):
    path = tmp_path / "noval.h5"
    save_h5(path, make_dataset("tiny", seed=0), include_val=False)
    cfg = _config("psd", **{"optim.epochs": 1})
    memory = list(train(cfg, load_h5(path)))
    disk = list(train(cfg.replace(**{"data.stream_above_mb": "0"}), load_h5(path, lazy_train=True)))
    assert disk[-1].best_val.avg == pytest.approx(memory[-1].best_val.avg, abs=1e-5)
