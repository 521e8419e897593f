"""Surprise monitor, calibration record, policy parameters, the surprise stop (no ROS)."""
import json
import math

import numpy as np
import pytest

from lewm_ros.control import node_params as P
from lewm_ros.control.diagnostics import PlannerStats
from lewm_ros.control.safety import SafetyConfig, SafetyFilter, SafetyState
from lewm_ros.control.surprise_calibration import CALIBRATION_FILE, SurpriseCalibration, load_calibration
from lewm_ros.control.surprise_monitor import SurpriseMonitor, SurprisePolicy

CAL = SurpriseCalibration.from_scores(np.linspace(0.1, 2.0, 1000), source='test')


def test_calibration_round_trip_and_units(tmp_path):
    assert load_calibration(tmp_path) is None
    CAL.save(tmp_path)
    loaded = load_calibration(tmp_path)
    assert loaded == CAL and loaded.reference == pytest.approx(np.quantile(np.linspace(0.1, 2.0, 1000), 0.99))


@pytest.mark.parametrize('edit, match', [
    (lambda d: d['quantiles'].update({'0.99': -1.0}), r'quantiles\[0.99\]'),
    (lambda d: d['quantiles'].update({'0.5': 100.0}), 'non-decreasing'),
    (lambda d: d.update(reference_level=0.42), 'reference_level'),
    (lambda d: d.update(typo=1), 'unknown key'),
])
def test_invalid_calibration_file_fails_naming_it(tmp_path, edit, match):
    data = CAL.to_dict()
    edit(data)
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match) as info:
        load_calibration(tmp_path)
    assert CALIBRATION_FILE in str(info.value)


def test_a_calibration_of_other_weights_fails_naming_it(tmp_path):
    import shutil
    from pathlib import Path
    from lewm_ros.runtime.onnx_manifest import model_hash
    shipped = Path(__file__).resolve().parents[2] / 'models' / 'tworoom_compact'
    assert load_calibration(shipped).model_hash == model_hash(shipped)      # the shipped one is bound
    for name in ('config.json', 'weights.pt', 'lewm_meta.json', CALIBRATION_FILE):
        shutil.copy(shipped / name, tmp_path / name)
    assert load_calibration(tmp_path) is not None
    with open(tmp_path / 'weights.pt', 'ab') as weights:                   # retrained in place
        weights.write(b'0')
    with pytest.raises(ValueError, match='model_hash') as info:
        load_calibration(tmp_path)
    assert CALIBRATION_FILE in str(info.value) and 'surprise --calibrate' in str(info.value)


def test_calibrated_levels_and_consecutive_blocks():
    monitor = SurpriseMonitor(SurprisePolicy(action='stop', threshold=3.0, consecutive=2), CAL)
    ref = CAL.reference
    first = monitor.update(1.0 * ref, tick=5)
    assert first.level == pytest.approx(1.0) and first.calibrated and not first.alarm
    assert not monitor.update(5.0 * ref, tick=10).alarm                   # one block high: not yet
    alarm = monitor.update(4.0 * ref, tick=15)
    assert alarm.alarm and alarm.streak == 2 and monitor.alarms == 1
    status = monitor.status()
    assert status.level == 'error' and 'for 2 block(s)' in status.reason and status.values['surprise_level'] == '4'
    monitor.reset_streak()                                                # history restarted
    assert monitor.status().level == 'ok' and not monitor.update(5.0 * ref, tick=20).alarm


def test_two_tiers_a_large_block_alarms_at_once_a_moderate_one_must_persist():
    policy = SurprisePolicy(action='stop', threshold=3.0, consecutive=2, instant_threshold=8.0)
    monitor, ref = SurpriseMonitor(policy, CAL), CAL.reference
    assert not monitor.update(4.5 * ref, tick=5).alarm                    # one moderate block: no alarm
    assert not monitor.update(1.0 * ref, tick=10).alarm
    instant = monitor.update(30.0 * ref, tick=15)                         # a teleport: at once
    assert instant.alarm and instant.streak == 1 and 'instant threshold' in monitor.status().reason
    assert monitor.update(4.0 * ref, tick=20).alarm and monitor.alarms == 1   # the same alarm goes on
    monitor.update(1.0 * ref, tick=25)
    monitor.update(3.5 * ref, tick=30)
    persisting = monitor.update(3.2 * ref, tick=35)                       # a frozen camera: two blocks
    assert persisting.alarm and monitor.alarms == 2 and 'for 2 block(s)' in monitor.status().reason
    with pytest.raises(ValueError, match='surprise.instant_threshold'):
        SurprisePolicy(threshold=5.0, instant_threshold=4.0)


def test_running_estimate_after_warmup_ignores_alarms():
    monitor = SurpriseMonitor(SurprisePolicy(action='warn', threshold=3.0, warmup_blocks=10), None)
    readings = [monitor.update(1.0, tick=i) for i in range(10)]
    assert all(r.level is None and not r.calibrated for r in readings)
    assert monitor.status().values['surprise_calibration'] == 'running estimate (uncalibrated)'
    high = monitor.update(50.0, tick=11)
    assert high.level == pytest.approx(50.0) and high.alarm and monitor.status().level == 'warn'
    assert monitor.reference() == pytest.approx(1.0)                       # the alarm is not "normal"


@pytest.mark.parametrize('calibration', [CAL, None])
@pytest.mark.parametrize('bad', [math.nan, math.inf])
def test_non_finite_scores_alarm_and_never_become_normal(calibration, bad):
    monitor = SurpriseMonitor(SurprisePolicy(action='stop', threshold=3.0, consecutive=1, warmup_blocks=10),
                              calibration)
    for i in range(10):
        monitor.update(1.0, tick=i)
    reference = monitor.reference()
    reading = monitor.update(bad, tick=10)
    assert reading.alarm and reading.level == math.inf and monitor.status().level == 'error'
    assert monitor.reference() == reference                                 # not in the running estimate
    assert monitor.update(1e9, tick=11).alarm                                # still armed afterwards
    warming = SurpriseMonitor(SurprisePolicy(action='stop', threshold=3.0, consecutive=1), None)
    assert warming.update(bad, tick=0).alarm                                 # even while warming up


def test_policy_parameters_fail_configure_on_a_typo_and_change_while_running():
    with pytest.raises(ValueError, match='parameter surprise.action'):
        P.from_values({'model_dir': '/m', 'surprise.action': 'stopp'})
    params = P.from_values({'model_dir': '/m', 'surprise.action': 'warn', 'surprise.threshold': 5.0})
    assert params.surprise == SurprisePolicy(action='warn', threshold=5.0)
    monitor = SurpriseMonitor(params.surprise, CAL)
    monitor.set_policy(SurprisePolicy(action='warn', threshold=8.0, consecutive=3))
    assert monitor.policy.threshold == 8.0
    with pytest.raises(ValueError, match='static'):
        monitor.set_policy(SurprisePolicy(action='stop'))


def test_surprise_stop_latches_until_reset_and_reports_error():
    safety = SafetyFilter(SafetyConfig(action_low=(-1.0,), action_high=(1.0,), rate_limit=(math.inf,)))
    go = dict(action=np.array([0.5]), now_s=1.0, image_stamp_s=1.0, plan_stamp_s=1.0, dt_s=0.1)
    assert safety.filter(**go).state is SafetyState.OK
    safety.set_surprise_stop()
    out = safety.filter(**go)
    assert out.state is SafetyState.SURPRISE and not out.command.any() and safety.estopped
    assert safety.filter(**go).state is SafetyState.SURPRISE                # latched
    monitor = SurpriseMonitor(SurprisePolicy(action='stop'), CAL)
    monitor.update(10 * CAL.reference, tick=3)
    report = PlannerStats().report(SafetyState.SURPRISE, 0.1, 'torch', 'm', 'cem', 0, monitor.status())
    assert report.level == 'error' and report.message.startswith('surprise_stop: surprise 10')
    safety.reset_estop()
    resumed = safety.filter(**{**go, 'action': None})                     # the plan ran out while stopped
    assert resumed.state is SafetyState.NO_PLAN and resumed.resumed        # history reset all the same
    assert safety.filter(**go).state is SafetyState.OK and not safety.filter(**go).resumed
