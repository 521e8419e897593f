"""Safety filter: limits, rate limits, watchdog, enable, e-stop latch, reset-on-resume."""
import math

import numpy as np
import pytest

from lewm_ros.control.safety import SafetyConfig, SafetyFilter, SafetyState

DT = 0.1


def make(rate=(math.inf, math.inf), **kw):
    return SafetyFilter(SafetyConfig(action_low=(-1.0, -0.5), action_high=(1.0, 0.5), rate_limit=rate, **kw))


def test_limits_clip_each_dimension():
    out = make().filter(np.array([3.0, -2.0]), now_s=1.0, image_stamp_s=1.0, plan_stamp_s=1.0, dt_s=DT)
    assert out.state is SafetyState.OK
    np.testing.assert_allclose(out.command, [1.0, -0.5])


def test_rate_limit_ramps_up_but_stop_is_immediate():
    f = make(rate=(2.0, 1.0))  # [units/s] -> 0.2 and 0.1 per 0.1 s tick
    commands = [f.filter(np.array([1.0, 0.5]), 1.0 + i * DT, 1.0 + i * DT, 1.0 + i * DT, DT).command
                for i in range(3)]
    np.testing.assert_allclose(commands, [[0.2, 0.1], [0.4, 0.2], [0.6, 0.3]])
    stopped = f.filter(np.array([1.0, 0.5]), 2.0, None, 2.0, DT)
    assert stopped.state is SafetyState.STALE_IMAGE
    np.testing.assert_array_equal(stopped.command, [0.0, 0.0])


def test_watchdog_stale_image_and_plan_and_missing_plan():
    f = make(image_timeout=0.5, plan_timeout=1.0)
    a = np.array([0.5, 0.1])
    assert f.filter(a, 10.0, 9.6, 9.5, DT).state is SafetyState.OK
    assert f.filter(a, 10.0, 9.4, 9.5, DT).state is SafetyState.STALE_IMAGE
    assert f.filter(a, 10.0, 9.9, 8.9, DT).state is SafetyState.STALE_PLAN
    assert f.filter(None, 10.0, 9.9, None, DT).state is SafetyState.NO_PLAN
    assert f.filter(np.array([np.nan, 0.0]), 10.0, 9.9, 9.9, DT).state is SafetyState.NO_PLAN


def test_estop_latches_until_reset_and_resume_requests_history_reset():
    f = make()
    a = np.array([0.5, 0.1])
    f.set_estop(True)
    f.set_estop(False)  # a False on ~/estop does not release the latch
    out = f.filter(a, 1.0, 1.0, 1.0, DT)
    assert out.state is SafetyState.ESTOP and not out.command.any()
    f.reset_estop()
    out = f.filter(a, 1.1, 1.1, 1.1, DT)
    assert out.state is SafetyState.OK and out.resumed
    assert not f.filter(a, 1.2, 1.2, 1.2, DT).resumed


def test_disable_stops_and_no_plan_resume_keeps_history():
    f = make()
    a = np.array([0.5, 0.1])
    assert f.filter(None, 1.0, 1.0, None, DT).state is SafetyState.NO_PLAN
    assert not f.filter(a, 1.1, 1.1, 1.1, DT).resumed  # first plan: nothing to reset
    f.set_enabled(False)
    assert f.filter(a, 1.2, 1.2, 1.2, DT).state is SafetyState.DISABLED
    f.set_enabled(True)
    assert f.filter(a, 1.3, 1.3, 1.3, DT).resumed


@pytest.mark.parametrize('kw, field', [
    (dict(action_low=(0.1, -1.0)), 'action_low[0]'),
    (dict(action_high=(1.0,)), 'action_high'),
    (dict(rate_limit=(0.0, 1.0)), 'rate_limit[0]'),
    (dict(image_timeout=0.0), 'image_timeout'),
    (dict(plan_timeout=math.nan), 'plan_timeout'),
])
def test_config_errors_name_the_field(kw, field):
    base = dict(action_low=(-1.0, -1.0), action_high=(1.0, 1.0), rate_limit=(math.inf, math.inf))
    with pytest.raises(ValueError, match=field.replace('[', r'\[').replace(']', r'\]')):
        SafetyConfig(**{**base, **kw})


def test_a_clock_jumping_back_makes_images_and_plans_stale():
    """A stamp from the future (sim time restarted, a clock reset) is not fresh: the robot stops."""
    safety = SafetyFilter(SafetyConfig(action_low=(-1.0,), action_high=(1.0,), rate_limit=(math.inf,)))
    assert safety.filter(np.array([0.5]), 10.0, 9.9, 9.9, 0.1).state is SafetyState.OK
    out = safety.filter(np.array([0.5]), 3.0, 9.9, 9.9, 0.1)  # now < image stamp
    assert out.state is SafetyState.STALE_IMAGE and not out.command.any()
    assert safety.filter(np.array([0.5]), 10.0, 9.95, 10.5, 0.1).state is SafetyState.STALE_PLAN
