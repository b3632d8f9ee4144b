import numpy as np
import pytest

from core.training.config import ScheduleConfig
from core.training.schedules import ratio_schedule, soft_weight


def test_linear_goes_from_start_to_end_evenly():
    r = ratio_schedule(ScheduleConfig(r_start=1.0, r_end=0.3, shape="linear"), 8)
    assert r[0] == pytest.approx(1.0) and r[-1] == pytest.approx(0.3)
    assert np.allclose(np.diff(r), -0.1)


def test_cosine_is_monotone_and_slow_at_both_ends():
    r = ratio_schedule(ScheduleConfig(r_start=1.0, r_end=0.2, shape="cosine"), 11)
    steps = -np.diff(r)
    assert r[0] == pytest.approx(1.0) and r[-1] == pytest.approx(0.2)
    assert (steps >= 0).all() and steps[0] < steps[5] and steps[-1] < steps[5]


def test_step_has_plateaus():
    r = ratio_schedule(ScheduleConfig(r_start=1.0, r_end=0.4, shape="step", steps=3), 9)
    assert r.tolist() == pytest.approx([1.0] * 3 + [0.7] * 3 + [0.4] * 3)


def test_one_epoch_uses_r_start_and_bad_values_are_rejected():
    assert ratio_schedule(ScheduleConfig(r_end=0.3), 1).tolist() == [1.0]
    with pytest.raises(ValueError, match="resolve"):
        ratio_schedule(ScheduleConfig(), 5)  # r_end "auto" is set by the run, from its data
    with pytest.raises(ValueError, match="r_end"):
        ratio_schedule(ScheduleConfig(r_end=0.0), 5)
    with pytest.raises(ValueError, match="shape"):
        ratio_schedule(ScheduleConfig(shape="exp"), 5)


def test_soft_weight_defaults_to_one_minus_r():
    assert soft_weight(-1.0, 0.3) == pytest.approx(0.7)
    assert soft_weight(0.5, 0.3) == 0.5
