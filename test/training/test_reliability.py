"""The reliability kit (lewm_training.reliability, README "Reliability"): fast variants of the checks
that no other test covers: camera fuzz into a running planner_node, planner faults, malicious
weights.pt at configure, and the soak's figures. Covered elsewhere, so not repeated here: the
stall-to-stop watchdog (test/ros/test_planner_node.py), kill -9 resume of collect and fit
(test_collect.py, test_fit.py), the closed loop under lewm-run (test/ros/test_runner.py)."""
import argparse

import numpy as np
import pytest

from lewm_training.reliability import faults, fuzz, model_safety, soak
from lewm_training.reliability.__main__ import CHECKS, main
from lewm_training.reliability.common import CheckResult

DOMAIN_ID = 58  # the rigs also live in namespaces of their own


def parsed(module, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args([*argv, '--domain-id', str(DOMAIN_ID)])


def test_fuzzed_camera_messages_neither_crash_the_node_nor_leave_the_limits():
    result = fuzz.run(parsed(fuzz, '--count', '300', '--seed', '1'))
    assert result.passed, result.failures
    figures = result.figures
    assert figures['taken_by_node'] >= 300 and not figures['crashed']
    assert figures['node_dropped'] > 0 and figures['commands'] > 0 and figures['commands_out_of_limits'] == 0
    assert set(figures['phases']) == {'raw', 'compressed'}


def test_planner_faults_end_in_zero_commands_at_a_steady_control_rate():
    result = faults.run(parsed(faults, '--hold', '0.5', '--plan-timeout', '1.0'))
    per_fault = result.figures['faults']
    assert set(per_fault) == set(faults.FAULTS)
    for mode, figures in per_fault.items():
        assert figures['faulty_calls'] > 0 and figures['recovered'], (mode, figures)
        assert figures['out_of_limits'] == 0 and figures['rate_ok'], (mode, figures)
    for mode in faults.FAULTS:  # a plan of 1e9 actions is a broken planner: dropped, the robot stops
        assert per_fault[mode]['zero_held'], (mode, per_fault[mode])


def test_malicious_weights_refused_at_configure_and_never_run():
    result = model_safety.run(parsed(model_safety, '--cases', '2'))
    assert result.passed, result.failures
    assert result.figures['payloads_live'] and result.figures['refused_unexecuted'] == 2


def test_soak_figures_rate_gaps_and_memory_growth():
    stamps = np.arange(0.0, 100.0, 0.1)
    stamps[500:] += 0.2  # one 0.3 s gap
    rss = [(t, 100.0 + (10.0 if t >= 60.0 else 0.0) + t / 100.0) for t in np.arange(0.0, 101.0, 1.0)]
    figures = soak.soak_figures(stamps, rss, start_s=0.0, rate_hz=10.0)
    assert figures['commands'] == 1000 and figures['gap_max_s'] == pytest.approx(0.3)
    assert figures['gap_p50_s'] == pytest.approx(0.1) and figures['rate_hz'] == pytest.approx(999 / 100.1, abs=1e-3)
    assert figures['rss_first_mb'] == 100.0 and figures['rss_growth_pct'] == pytest.approx(11.0)
    assert figures['rss_growth_after_60s_pct'] == pytest.approx(100 * (111.0 / 110.6 - 1), abs=0.01)


def test_results_print_one_json_line_and_the_cli_lists_every_check(capsys):
    result = CheckResult('demo', figures={'x': np.float32(1.5)}, summary=['a line'])
    result.require(False, 'it broke')
    result.emit()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '{"check": "demo", "passed": false, "x": 1.5, "failures": ["it broke"]}'
    assert lines[1] == '  a line' and 'FAIL: it broke' in lines[2]
    assert set(CHECKS) == {'fuzz', 'stall', 'faults', 'model-safety', 'resume', 'soak'}
    with pytest.raises(SystemExit) as exit_info:
        main(['--help'])
    assert exit_info.value.code == 0
