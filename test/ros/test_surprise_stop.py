"""Simulator in the loop with the shipped model and its surprise calibration: `lewm-demo --faults`
(real sim_node and planner_node over ROS 2 topics, its own process, the planner defaults at real
time) injects a teleport, a camera
freeze, black frames and a push through sim_node's fault services; planner_node's surprise
monitor (default policy: stop) stops the robot within 3 blocks of each, and the normal episodes
raise no alarm."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lewm_training.demo import default_params_file

MODEL = Path(__file__).resolve().parents[2] / 'models' / 'tworoom_compact'
FAULTS = ('none', 'teleport', 'freeze', 'black', 'push', 'none')


@pytest.mark.timeout(600)
def test_faults_stop_the_robot_within_three_blocks_and_normal_episodes_raise_no_alarm(tmp_path):
    assert (MODEL / 'surprise_calibration.json').is_file()
    env = {**os.environ, 'ROS_DOMAIN_ID': '87', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'MUJOCO_GL': 'egl'}
    subprocess.run([sys.executable, '-m', 'lewm_training.demo', '--model-dir', str(MODEL), '--params',
                    str(default_params_file()), '--episodes', str(len(FAULTS)), '--faults', *FAULTS,
                    '--fault-after', '15', '--gif-episodes', str(len(FAULTS)), '--headless', '--out', str(tmp_path)],
                   env=env, check=True, timeout=580, stdout=subprocess.DEVNULL)
    faults = json.loads((tmp_path / 'demo_results.json').read_text())['summary']['faults']
    rows = faults['episodes']
    print('\n' + '\n'.join(str(row) for row in rows))
    assert [row['fault'] for row in rows] == list(FAULTS)
    for row in rows:
        if row['fault'] != 'none':
            assert row['alarm_step'] is not None and row['stop_blocks'] is not None and row['stop_blocks'] <= 3, row
    assert faults['normal_episodes'] == 2 and faults['normal_with_alarm'] == 0
    assert (tmp_path / 'demo_surprise.png').stat().st_size > 0 and (tmp_path / 'demo.gif').stat().st_size > 0
