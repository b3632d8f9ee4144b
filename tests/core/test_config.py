import pytest

from core.config import RunConfig, method_config


def test_round_trip_through_dict():
    cfg = RunConfig().replace(**{"loss.margin": 0.3, "seed": 4, "schedule.shape": "cosine"})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.loss.margin == 0.3 and cfg.seed == 4


def test_defaults_follow_the_method_spec():
    cfg = RunConfig()
    assert (cfg.model.hidden, cfg.model.dim) == (512, 128)
    assert (cfg.loss.margin, cfg.loss.lambda_dis, cfg.loss.teacher_momentum) == (0.2, 0.1, 0.99)
    assert (cfg.schedule.r_start, cfg.schedule.r_end, cfg.schedule.shape) == (1.0, 0.3, "linear")
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (1e-3, 1e-5)


def test_unknown_fields_are_errors_naming_them():
    with pytest.raises(KeyError, match=r"loss\.margn"):
        RunConfig().replace(**{"loss.margn": 1})
    with pytest.raises(KeyError, match=r"model\.width"):
        RunConfig.from_dict({"model": {"width": 3}})


def test_baselines_use_every_label():
    assert method_config("triplet").schedule.r_end == 1.0
    assert method_config("psd").schedule.r_end == 0.3
    with pytest.raises(ValueError, match="unknown method"):
        method_config("moco")
