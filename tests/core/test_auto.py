"""Settings set from the data ("auto"): resolved once in core, recorded, and never over a value
the user set; the same in the CLI and the library (the app's side is in tests/gui)."""

from __future__ import annotations

import json

import pytest

from avexplorer.cli import main
from core.training import auto
from core.training.auto import auto_settings, label_rate, paper_settings, resolve, train_labels
from core.training.checkpoint import load_checkpoint
from core.training.config import AUTO, ConfigError, RunConfig, auto_fields, method_config
from core.training.events import EpochEnd, RunStarted
from core.training.loop import train

FAST = ["--epochs", "2", "--batch-size", "32", "--hidden", "32", "--dim", "16", "--threads", "1"]


def small(method="psd", epochs=2, **over):
    over = {
        "optim.epochs": epochs,
        "optim.batch_size": 32,
        "model.hidden": 32,
        "model.dim": 16,
        "threads": 1,
        "snapshot_every": 0,
    } | over
    return method_config(method).replace(**over)


def started(events) -> RunStarted:
    return next(e for e in events if isinstance(e, RunStarted))


def test_an_auto_field_takes_auto_or_a_value_in_its_range_and_no_other_field_takes_auto():
    cfg = RunConfig()
    assert cfg.unresolved() == list(auto_fields()) and "schedule.r_end" in auto_fields()
    assert cfg.replace(**{"schedule.r_end": 0.5}).unresolved() == [
        d for d in auto_fields() if d != "schedule.r_end"
    ]
    with pytest.raises(ConfigError, match=r"schedule\.r_end.*<= 1"):
        cfg.replace(**{"schedule.r_end": 1.5})
    with pytest.raises(ConfigError, match=r"schedule\.r_end.*expected a number"):
        cfg.replace(**{"schedule.r_end": "half"})
    with pytest.raises(ConfigError, match=r"loss\.margin.*expected a number"):
        cfg.replace(**{"loss.margin": AUTO})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg  # "auto" round-trips


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.1, 0.25, 0.49, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("per_class", [1.0, 2.5, 20.0, 101.0, 2000.0])
def test_the_rule_sets_every_auto_field_with_a_valid_value(rate, per_class):
    settings = auto_settings(rate, per_class)
    assert set(settings) == set(auto_fields())
    assert not RunConfig().replace(**settings).unresolved()
    assert auto_settings(rate, per_class) == settings  # a pure function of the labels


def test_a_config_saved_before_a_field_existed_means_the_papers_value():
    old = RunConfig().replace(**paper_settings()).to_dict()
    del old["recipe"], old["schedule"]["r_end"]
    cfg = RunConfig.from_saved(old)
    assert cfg.recipe == "paper" and cfg.schedule.r_end == paper_settings()["schedule.r_end"]


def test_label_rate_counts_the_pairs_left_labelled_after_hiding(tiny_data):
    assert label_rate(small(), tiny_data) == 1.0
    rate = label_rate(small(**{"data.label_fraction": 0.1}), tiny_data)
    hidden = (tiny_data.train.labels >= 0).mean() * 0.1
    assert rate == pytest.approx(hidden, abs=0.05) and rate < 0.2


def test_resolve_fills_only_auto_fields_and_says_what_it_chose(tiny_data):
    few = small(**{"data.label_fraction": 0.1})
    labels = train_labels(few, tiny_data)
    assert labels.per_class == int(labels.rate * len(tiny_data.train)) / tiny_data.num_classes
    cfg, line = resolve(few, tiny_data)
    assert not cfg.unresolved()
    expected = auto_settings(labels.rate, labels.per_class)
    assert cfg.replace(**expected) == cfg  # exactly the rule's values
    assert line.startswith(
        f"psd: {100 * labels.rate:.1f} % of train pairs labelled "
        f"({round(labels.per_class, 1):g} a class) -> r_end "
    )
    assert line.endswith("(auto)") and ";" not in line

    # a value the user set wins, and the line says it was set
    mine, line = resolve(few.replace(**{"schedule.r_end": 0.7}), tiny_data)
    assert mine.schedule.r_end == 0.7 and "r_end 0.7 (set)" in line

    # the paper's recipe: the paper's values whatever the label rate
    paper, line = resolve(few.replace(recipe="paper"), tiny_data)
    assert paper.replace(**paper_settings()) == paper and line.endswith("(paper recipe)")
    assert paper.recipe == "paper"  # recorded with the run

    # the baselines never distil: their schedule is r = 1 and nothing else is from the data
    trip, line = resolve(small("triplet", **{"data.label_fraction": 0.1}), tiny_data)
    assert trip.schedule.r_end == 1.0 and "r_end" not in line and line.startswith("triplet: ")
    others = {d: v for d, v in paper_settings().items() if d != "schedule.r_end"}
    assert {d: trip.flat()[d] for d in others} == others


def test_train_records_the_resolved_values_everywhere(tiny_data, tmp_path, monkeypatch):
    """The first event, config.json and both checkpoints hold the resolved config, not "auto";
    the rule is consulted once, with the run's label rate."""
    seen = []

    def rule(rate, per_class):
        seen.append((rate, per_class))
        return paper_settings() | {"schedule.r_end": 0.8}

    monkeypatch.setattr(auto, "auto_settings", rule)
    cfg = small(**{"data.label_fraction": 0.1})
    events = list(train(cfg, tiny_data, out_dir=tmp_path / "run"))
    first = started(events)
    labels = train_labels(cfg, tiny_data)
    assert first is events[0] and seen == [(labels.rate, labels.per_class)]
    assert "r_end 0.8" in first.settings and first.settings.endswith("(auto)")
    resolved = RunConfig.from_dict(first.config)
    assert resolved.schedule.r_end == 0.8 and not resolved.unresolved()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert RunConfig.from_dict(saved) == resolved
    for name in ("model.pt", "last.pt"):
        assert load_checkpoint(tmp_path / "run" / name).config == resolved
    assert [e.r for e in events if isinstance(e, EpochEnd)][-1] == 0.8


def test_an_explicit_value_always_wins_in_the_library(tiny_data):
    events = train(small(**{"data.label_fraction": 0.1, "schedule.r_end": 0.6}), tiny_data)
    first = next(events)
    events.close()
    assert first.config["schedule"]["r_end"] == 0.6 and "r_end 0.6 (set)" in first.settings


def test_resume_keeps_the_recorded_values_when_the_rule_would_now_say_otherwise(
    tiny_data, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    cfg = small(epochs=1, **{"data.label_fraction": 0.1})
    list(train(cfg, tiny_data, out_dir=out))
    recorded = load_checkpoint(out / "last.pt").config
    monkeypatch.setattr(
        auto, "auto_settings", lambda *_: paper_settings() | {"schedule.r_end": 0.55}
    )
    events = list(
        train(
            cfg.replace(**{"optim.epochs": 2}), tiny_data, out_dir=out, resume_from=out / "last.pt"
        )
    )
    first = started(events)
    assert first.config["schedule"]["r_end"] == recorded.schedule.r_end != 0.55
    assert first.settings.endswith("(as recorded)")
    assert load_checkpoint(out / "last.pt").config == recorded.replace(**{"optim.epochs": 2})


def test_cli_prints_the_resolved_settings_first_and_records_them(tiny_h5, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(tiny_h5), "--out", str(run), "--quiet", "--label-fraction", "0.1", *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    saved = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    from core.data.dataset import load_h5

    data = load_h5(tiny_h5, val_fraction=saved.data.val_fraction, seed=saved.seed)
    flags_config = small(**{"data.label_fraction": 0.1, "snapshot_every": 10})
    expected_config, expected_line = resolve(flags_config, data)
    assert out[0] == expected_line and out[0].endswith("(auto)")
    # the CLI's run is the library's: same resolved values from the same flags
    assert saved == expected_config
    assert load_checkpoint(run / "model.pt").config == saved

    # a flag wins over auto; "auto" can be asked for explicitly
    assert main([*argv[:3], str(tmp_path / "set"), *argv[4:], "--r-end", "0.7"]) == 0
    assert "r_end 0.7 (set)" in capsys.readouterr().out.splitlines()[0]
    assert main([*argv[:3], str(tmp_path / "auto"), *argv[4:], "--r-end", "auto"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == expected_line


def test_cli_recipe_paper_is_the_papers_psd(tiny_h5, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(tiny_h5), "--out", str(run), "--quiet", "--label-fraction", "0.1"]
    assert main([*argv, "--recipe", "paper", *FAST]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    saved = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.recipe == "paper" and saved.replace(**paper_settings()) == saved
    assert first.endswith("(paper recipe)") and "r_end 0.3" in first


def test_cli_resume_reports_the_recorded_values(tiny_h5, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(tiny_h5), "--out", str(run), "--quiet", "--label-fraction", "0.1"]
    assert main([*argv, *FAST]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert (
        main(["train", str(tiny_h5), "--out", str(run), "--quiet", "--resume", "--epochs", "3"])
        == 0
    )
    again = capsys.readouterr().out.splitlines()[0]
    assert again == first.replace("(auto)", "(as recorded)")


def test_cli_refuses_a_bad_auto_flag_in_one_line(tiny_h5, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", str(tiny_h5), "--out", str(tmp_path / "r"), "--r-end", "most"])
    assert e.value.code == 2
    assert "--r-end" in capsys.readouterr().err
    assert main(["train", str(tiny_h5), "--out", str(tmp_path / "r"), "--recipe", "mine"]) == 2
    assert "--recipe: 'mine' is not one of default, paper" in capsys.readouterr().err
