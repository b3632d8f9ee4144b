import pytest

from core.training.config import RunConfig, auto_fields, method_config


def test_round_trip_through_dict():
    cfg = RunConfig().replace(**{"loss.margin": 0.3, "seed": 4, "schedule.shape": "cosine"})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.loss.margin == 0.3 and cfg.seed == 4


def test_defaults_follow_the_method_spec():
    cfg = RunConfig()
    assert (cfg.model.hidden, cfg.model.dim) == (512, 128)
    assert (cfg.loss.margin, cfg.loss.lambda_dis, cfg.loss.teacher_momentum) == (0.2, 0.1, 0.99)
    assert (cfg.schedule.r_start, cfg.schedule.shape) == (1.0, "linear")
    assert cfg.schedule.r_end == "auto" and cfg.recipe == "default"  # set from the data
    assert auto_fields()["schedule.r_end"] == 0.3  # the paper's value
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (1e-3, 1e-5)


def test_unknown_fields_are_errors_naming_them():
    with pytest.raises(KeyError, match=r"loss\.margn"):
        RunConfig().replace(**{"loss.margn": 1})
    with pytest.raises(KeyError, match=r"model\.width"):
        RunConfig.from_dict({"model": {"width": 3}})


def test_baselines_use_every_label():
    assert method_config("triplet").schedule.r_end == 1.0
    assert method_config("psd").schedule.r_end == "auto"
    with pytest.raises(ValueError, match="unknown method"):
        method_config("moco")


# Every bad value is refused where the config is built, naming the dotted field.
BAD_VALUES = [
    ("optim.epochs", 0),
    ("optim.epochs", 2.5),
    ("optim.batch_size", 1),
    ("optim.batch_size", True),
    ("optim.lr", 0.0),
    ("optim.lr", float("inf")),
    ("optim.weight_decay", -1e-3),
    ("model.hidden", 0),
    ("model.dim", -4),
    ("model.dropout", 1.0),
    ("model.activation", "tanh"),
    ("model.logit_scale", 0.0),
    ("model.standardize", "yes"),
    ("loss.method", "moco"),
    ("loss.margin", float("nan")),
    ("loss.margin", -0.1),
    ("loss.mining", "hardest"),
    ("loss.temperature", 0.0),
    ("loss.teacher", "median"),
    ("loss.teacher_momentum", 1.5),
    ("loss.infonce_temperature", 0.0),
    ("loss.lambda_soft", float("nan")),
    ("schedule.r_start", 1.2),
    ("schedule.r_end", -0.1),
    ("schedule.shape", "exp"),
    ("schedule.steps", 0),
    ("data.val_fraction", 0.0),
    ("data.val_fraction", 1.0),
    ("seed", -1),
    ("threads", 10_000),
    ("device", "gpu"),
    ("snapshot_every", -1),
    # No upper bound or an open end let these pass, and the run failed after its folder was made
    ("schedule.r_start", 0.0),
    ("schedule.r_end", 0.0),
    ("optim.epochs", 10**9),
    ("optim.batch_size", 10**12),
    ("model.hidden", 10**9),
    ("model.dim", 10**9),
    ("schedule.steps", 10**12),
    ("loss.soft_start", 10**15),
    ("data.label_seed", 2**32),
    ("snapshot_every", 2**40),
    ("loss.infonce_temperature", 1e-4),  # the loss reaches 1e29 with the run still "fine"
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=[f"{n}={v}" for n, v in BAD_VALUES])
def test_bad_values_are_refused_naming_the_field(name, value):
    from core.training.config import ConfigError

    with pytest.raises(ConfigError) as err:
        RunConfig().replace(**{name: value})
    assert err.value.field == name and str(err.value).startswith(f"{name}: ")
    assert "\n" not in str(err.value)


def test_sections_validate_when_built_directly_and_from_a_dict():
    from core.training.config import ConfigError, OptimConfig

    with pytest.raises(ConfigError, match=r"optim\.epochs"):
        OptimConfig(epochs=0)
    with pytest.raises(ConfigError, match=r"model\.activation"):
        RunConfig.from_dict({"model": {"activation": "swish"}})
    with pytest.raises(ConfigError, match="expected a section"):
        RunConfig.from_dict({"model": 3})


def test_whole_numbers_are_accepted_for_float_fields_and_stored_as_floats():
    cfg = RunConfig().replace(**{"loss.margin": 1})
    assert cfg.loss.margin == 1.0 and isinstance(cfg.loss.margin, float)
