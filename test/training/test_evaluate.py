"""lewm-train eval: the paper's protocol over a real MuJoCo task and the real MPC planner
(tiny random model: the numbers are meaningless, the protocol mechanics are not)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lewm_ros.model import LeWM, ModelMetadata, save_model_dir
from lewm_ros.planning.config import MPCConfig
from lewm_training import evaluate as E
from lewm_training.planner_args import describe, planner_from_args
from lewm_training.synthetic import tiny_model_config
from lewm_training.tasks import make_task


ROOT = Path(__file__).resolve().parents[2]


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


def test_goal_at_start_succeeds_at_first_step_and_the_episode_runs_the_budget(model_dir):
    from lewm_ros.planning.mpc import MPCPlanner
    planner = MPCPlanner.from_model_dir(model_dir)
    task = make_task('tworoom', image_size=32, seed=0)
    state = task.sample_state(np.random.default_rng(0))
    result = E.run_planner_episode(task, planner, E.EpisodeSpec(state, state, 'same'), E.EvalConfig(budget=10))
    assert result.success and result.first_success_step == 1 and result.steps == 10
    assert len(result.plan_latencies_s) == 2  # one plan per 5-step block


def _result(start, success, final):
    return E.EpisodeResult(success, 50, start, 0.0, 0.0, first_success_step=7 if success else None,
                           final_success=final)


def test_summary_gives_final_state_success_and_success_by_start_distance():
    results = [_result(0.1, True, True), _result(0.15, True, False), _result(0.5, False, False),
               _result(0.9, True, True)]
    summary = E.summarize(results, (0.2, 0.6))
    assert summary['success_rate'] == 75.0 and summary['final_success_rate'] == 50.0
    assert summary['mean_steps_to_success'] == 7.0
    assert [(b['start_distance'], b['episodes'], b['success_rate'], b['final_success_rate'])
            for b in summary['by_start_distance']] == [([0.0, 0.2], 2, 100.0, 50.0), ([0.2, 0.6], 1, 0.0, 0.0),
                                                      ([0.6, None], 1, 100.0, 100.0)]
    json.dumps(summary, allow_nan=False)  # strict JSON: the open last bin is null, not inf


def test_distance_bins_must_increase():
    with pytest.raises(ValueError, match='distance_bins'):
        E.EvalConfig(distance_bins=(0.4, 0.2))


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
    assert report['lewm']['plans'] == 2 * 10 // 5 and report['lewm']['plan_latency_ms_p99'] > 0
    for episode in report['episodes']:
        assert episode['lewm']['steps'] == 10 and episode['random']['steps'] == 10
    for side in ('lewm', 'random'):
        rates = [e[side]['success'] for e in report['episodes']]
        assert report[side]['success_rate'] == 100.0 * np.mean(rates)
        assert sum(b['episodes'] for b in report[side]['by_start_distance']) == 2
    alone = E.random_baseline(specs, cfg, 'tworoom', 32)   # the baseline alone plays the same episodes
    assert [r.final_distance for r in alone] == [e['random']['final_distance'] for e in report['episodes']]
    path = E.plot_report(json.loads(json.dumps(report, default=float)), tmp_path / 'eval.png')
    assert path.stat().st_size > 1000


def _planner(*argv):
    import argparse
    parser = argparse.ArgumentParser()
    E.add_arguments(parser)
    return planner_from_args(parser.parse_args(['--model-dir', 'm', *argv]))


@pytest.mark.parametrize('argv, cold, warm', [
    ([], MPCConfig().cem.iterations, MPCConfig().warm_iterations),
    (['--iterations', '10'], 10, 10),                       # one budget for every solve
    (['--iterations', '5', '--warm-iterations', '2'], 5, 2),
])
def test_cli_sets_cold_and_warm_iterations(argv, cold, warm):
    config = _planner(*argv).config
    assert (config.cem.iterations, config.warm_iterations) == (cold, warm)


def test_paper_preset_is_exactly_the_papers_cem_executed_whole():
    choice = _planner('--paper')
    assert choice.config == MPCConfig.paper() and choice.receding_blocks == MPCConfig.paper().cem.horizon
    cem = choice.config.cem
    assert (cem.num_samples, cem.num_elites, cem.iterations, cem.init_std) == (300, 30, 30, 1.0)
    assert not (cem.clamp_to_bounds or cem.hold_actions or choice.config.warm_start)


def test_params_file_gives_planner_nodes_planner(tmp_path):
    sim = _planner('--params', str(ROOT / 'config' / 'sim.yaml'))   # the simulation keeps the planner defaults
    assert sim.receding_blocks == 1 and sim.config.mode == 'auto' and sim.config.warm_start
    cem = sim.config.cem
    assert (cem.num_samples, cem.num_elites, cem.iterations, cem.hold_actions, cem.clamp_to_bounds) == (
        64, 8, 5, True, True)
    params = tmp_path / 'p.yaml'
    params.write_text('/**:\n  ros__parameters:\n    planner: {num_samples: 40, horizon: 3}\n'
                      'planner_node:\n  ros__parameters:\n    planner: {num_elites: 5}\n    receding_blocks: 2\n'
                      '    cost: {stage: {enabled: true, weight: 0.5}}\n')
    choice = _planner('--params', str(params))
    assert (choice.config.cem.num_samples, choice.config.cem.num_elites, choice.config.cem.horizon) == (40, 5, 3)
    assert choice.receding_blocks == 2 and choice.config.cost.stage_weight == 0.5


def test_every_setting_has_a_flag_over_the_base():
    choice = _planner('--paper', '--samples', '50', '--elites', '7', '--iterations', '4', '--horizon', '4',
                      '--init-std', '0.7', '--warm-start', '--warm-iterations', '2', '--warm-std', '0.3', '--clamp',
                      '--hold-actions', '--receding-blocks', '2', '--planner-seed', '9', '--history', '1',
                      '--cost', 'stage=0.5', '--cost', 'action=0.01')
    c = choice.config
    assert (c.cem.num_samples, c.cem.num_elites, c.cem.iterations, c.cem.horizon, c.cem.init_std) == (50, 7, 4, 4, 0.7)
    assert (c.warm_start, c.warm_iterations, c.warm_std, c.cem.clamp_to_bounds, c.cem.hold_actions) == (
        True, 2, 0.3, True, True)
    assert (choice.receding_blocks, c.cem.seed, c.history) == (2, 9, 1)
    assert (c.cost.terminal_weight, c.cost.stage_weight, c.cost.action_weight) == (1.0, 0.5, 0.01)
    assert 'CEM 50 x 4, 7 elites' in describe(choice)


@pytest.mark.parametrize('argv, match', [
    (['--receding-blocks', '6'], 'receding_blocks'),        # more than H = 5
    (['--samples', '10', '--elites', '20'], 'num_elites'),
    (['--cost', 'terminal=0'], 'terminal_weight'),          # a cost that ignores the goal
])
def test_out_of_range_settings_name_the_setting(argv, match):
    with pytest.raises(ValueError, match=match):
        _planner(*argv)


def test_paper_and_params_exclude_each_other():
    with pytest.raises(SystemExit):
        _planner('--paper', '--params', 'config/sim.yaml')


def test_critics_reach_the_planners_backend(model_dir):
    cfg = E.EvalConfig(episodes=1, budget=5, goal_offset=5)
    specs = E.episodes_from_policy('tworoom', 32, cfg)
    config = _planner('--cost', 'smoothness=0.1').config
    report = E.evaluate(model_dir, specs, cfg, 'tworoom', planner_config=config, with_random=False, progress=False)
    assert report['planner_config']['cost']['smoothness_weight'] == 0.1
