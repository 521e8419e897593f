"""lewm-train eval: the paper's protocol over a real MuJoCo task and the real MPC planner
(tiny random model: the numbers are meaningless, the protocol mechanics are not)."""
import json

import numpy as np
import pytest
import torch

from lewm_ros.model import LeWM, ModelMetadata, save_model_dir
from lewm_ros.planning.config import MPCConfig
from lewm_training import evaluate as E
from lewm_training.synthetic import tiny_model_config
from lewm_training.tasks import make_task


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = LeWM(tiny_model_config(image_size=32)).eval()
    meta = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=32, action_mean=[0.0, 0.0],
                         action_std=[0.6, 0.6], action_low=[-1.0, -1.0], action_high=[1.0, 1.0], task='tworoom',
                         preset='tiny')
    return save_model_dir(model, tmp_path_factory.mktemp('model'), meta)


def test_config_validation():
    with pytest.raises(ValueError, match='budget'):
        E.EvalConfig(budget=0)


def test_goal_at_start_succeeds_at_first_step(model_dir):
    from lewm_ros.planning.mpc import MPCPlanner
    planner = MPCPlanner.from_model_dir(model_dir)
    task = make_task('tworoom', image_size=32, seed=0)
    state = task.sample_state(np.random.default_rng(0))
    result = E.run_planner_episode(task, planner, E.EpisodeSpec(state, state, 'same'), E.EvalConfig(budget=10))
    assert result.success and result.steps == 1 and len(result.plan_latencies_s) == 1


def test_policy_episodes_are_seeded_and_goal_is_offset_steps_ahead():
    cfg = E.EvalConfig(episodes=3, goal_offset=25)
    a = E.episodes_from_policy('tworoom', 32, cfg)
    b = E.episodes_from_policy('tworoom', 32, cfg)
    assert all(np.array_equal(x.goal_state, y.goal_state) for x, y in zip(a, b))
    moved = [np.linalg.norm(s.goal_state[:2] - s.start_state[:2]) for s in a]
    assert max(moved) > 0.05  # 25 steps of the collection policy move the agent
    assert max(moved) <= 25 * 0.4 * 0.1 + 1e-6  # at most 25 steps at the top speed


def test_evaluate_reports_lewm_and_random_and_plots(model_dir, tmp_path):
    cfg = E.EvalConfig(episodes=2, budget=10, goal_offset=10)
    specs = E.episodes_from_policy('tworoom', 32, cfg)
    report = E.evaluate(model_dir, specs, cfg, 'tworoom', progress=False)
    assert report['lewm']['episodes'] == 2 and report['random']['episodes'] == 2
    assert 0 <= report['lewm']['success_rate'] <= 100
    assert report['lewm']['plans'] >= 2 and report['lewm']['plan_latency_ms_p99'] > 0
    for episode in report['episodes']:
        assert episode['lewm']['steps'] <= 10 and episode['random']['steps'] <= 10
    path = E.plot_report(json.loads(json.dumps(report, default=float)), tmp_path / 'eval.png')
    assert path.stat().st_size > 1000


@pytest.mark.parametrize('argv, cold, warm', [
    ([], MPCConfig().cem.iterations, MPCConfig().warm_iterations),
    (['--iterations', '10'], 10, 10),                       # one budget for every solve
    (['--iterations', '5', '--warm-iterations', '2'], 5, 2),
])
def test_cli_sets_cold_and_warm_iterations(argv, cold, warm):
    import argparse
    parser = argparse.ArgumentParser()
    E.add_arguments(parser)
    config = E.planner_config_from_args(parser.parse_args(['--model-dir', 'm', *argv]))
    assert (config.cem.iterations, config.warm_iterations) == (cold, warm)
