import torch

from core.errors import UserError
from core.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.training.config import RunConfig
from core.training.model import AVEmbedder


def make(tmp_path):
    cfg = RunConfig().replace(**{"model.hidden": 8, "model.dim": 4, "seed": 3})
    model = AVEmbedder(5, 6, 2, cfg.model)
    ckpt = Checkpoint(
        config=cfg,
        class_names=["dog", "car"],
        audio_dim=5,
        visual_dim=6,
        model=model.state_dict(),
        attrs={"visual_encoder": "efficientnet-lite0"},
    )
    return save_checkpoint(tmp_path / "m.pt", ckpt), model


def test_round_trip_rebuilds_the_same_model(tmp_path):
    path, model = make(tmp_path)
    ckpt = load_checkpoint(path)
    assert ckpt.config.seed == 3 and ckpt.class_names == ["dog", "car"]
    assert ckpt.attrs["visual_encoder"] == "efficientnet-lite0"
    x = torch.randn(3, 5)
    assert torch.allclose(ckpt.build_model().embed_audio(x), model.eval().embed_audio(x))


def test_checkpoints_load_with_weights_only(tmp_path):
    path, _ = make(tmp_path)
    assert torch.load(path, weights_only=True)["format"] == "avexplorer-checkpoint"


def test_no_temp_file_is_left_behind(tmp_path):
    make(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_unreadable_and_foreign_files_are_user_errors(tmp_path):
    import pytest

    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a readable avexplorer checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an avexplorer checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(UserError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
