"""lewm-demo's command line without ROS: critics as planner_node parameters, and the random
baseline measured on the demo's own episodes (sim_node's episodes 1..N of config/sim.yaml)."""
from pathlib import Path

import numpy as np
import pytest

from lewm_training.demo import DemoConfig, cost_params, default_model_dir, default_params_file, run_demo
from lewm_training.demo_report import EpisodeRecord, demo_sim_config, plan_rate, plot_episodes, random_baseline
from lewm_training.evaluate import EvalConfig, episodes_from_policy
from lewm_training.tasks import make_task


def test_cost_terms_become_planner_node_parameters():
    assert cost_params(['stage=0.5', 'terminal=0']) == (
        'cost.stage.enabled:=true', 'cost.stage.weight:=0.5', 'cost.terminal.enabled:=false')
    assert cost_params([]) == ()


@pytest.mark.parametrize('items, match', [(['stage=-1'], 'stage_weight'), (['speed=1'], 'TERM'),
                                          (['stage=1', 'stage=2'], 'twice')])
def test_bad_cost_terms_are_refused_before_the_nodes_start(items, match):
    with pytest.raises(ValueError, match=match):
        cost_params(items)


def test_random_baseline_plays_the_demos_episodes(caplog):
    task = make_task('tworoom', image_size=64)
    specs = episodes_from_policy('tworoom', 64, EvalConfig(episodes=4, seed=42))[1:]
    records = [EpisodeRecord(index=i, start_distance=task.distance(s.start_state, s.goal_state))
               for i, s in enumerate(specs)]
    baseline = random_baseline(Path(default_params_file()), 42, 50, records)
    assert baseline['episodes'] == 3 and 'not the same episode' not in caplog.text
    random_baseline(Path(default_params_file()), 7, 50, records)  # another seed: other episodes
    assert 'not the same episode' in caplog.text


def test_task_option_picks_the_tasks_sim_and_model_and_its_distance_unit(tmp_path):
    assert default_model_dir('pusht').name == 'pusht_compact' and default_model_dir().name == 'tworoom_compact'
    assert demo_sim_config(Path(default_params_file()), 42, 'pusht').task == 'pusht'
    assert demo_sim_config(Path(default_params_file()), 42).task == 'tworoom'   # the params file's task
    with pytest.raises(ValueError, match='task'):
        DemoConfig(model_dir=default_model_dir(), task='cartpole')
    records = [EpisodeRecord(index=0, success=True, distances=[(0.0, 3.0), (0.1, 0.5)], costs=[(0.0, 1.0)])]
    plot = plot_episodes(records, tmp_path / 'costs.png', 1.0, 'tolerance units')
    assert plot.stat().st_size > 10_000


def test_plan_rate_counts_plans_inside_episodes_only():
    assert plan_rate([[0.0, 0.5, 1.0], [10.0, 10.5]]) == pytest.approx(2.0)   # the 9 s between episodes is no gap
    assert np.isnan(plan_rate([[3.0]]))


def test_a_model_of_another_task_is_refused_before_the_nodes_start(tmp_path):
    with pytest.raises(ValueError, match='trained on tworoom'):
        run_demo(DemoConfig(model_dir=default_model_dir('tworoom'), task='pusht', out=tmp_path))


def test_the_observer_reads_every_command_type_sim_node_reads():
    from geometry_msgs.msg import Twist, TwistStamped
    from std_msgs.msg import Float64MultiArray

    from lewm_training.demo_observer import command_message
    twist = Twist()
    twist.angular.z = 0.5
    stamped = TwistStamped(twist=twist)
    for command_type, msg, values in (('twist', twist, [0, 0, 0, 0, 0, 0.5]),
                                      ('twist_stamped', stamped, [0, 0, 0, 0, 0, 0.5]),
                                      ('float64_multi_array', Float64MultiArray(data=[0.25, -1.0]), [0.25, -1.0])):
        msg_class, read = command_message(command_type)
        assert isinstance(msg, msg_class) and read(msg) == values
    with pytest.raises(ValueError, match='joint_trajectory'):
        command_message('joint_trajectory')
