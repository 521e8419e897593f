"""lewm-train surprise: the test statistic on synthetic errors, the block-resolution surprise
against the model's own teacher-forced pass, matched real TwoRoom rollouts, and an end-to-end
run with a random-weight compact model."""
import json

import numpy as np
import pytest
import torch

from lewm_ros.model import LeWM, ModelMetadata, compact_config, normalize_images, save_model_dir
from lewm_training import cli
from lewm_training.policies import PolicyConfig, make_policy
from lewm_training.surprise import SurpriseConfig, compare_groups, rollout, transition_surprise
from lewm_training.tasks import make_task

META = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0.0, 0.0],
                     action_std=[0.5, 0.5], action_low=[-1.0, -1.0], action_high=[1.0, 1.0],
                     task='tworoom', preset='compact')


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return LeWM(compact_config()).eval()


def test_statistic_separates_a_shifted_group():
    rng = np.random.default_rng(0)
    normal = rng.lognormal(0.0, 0.5, size=50)
    shifted = rng.lognormal(1.0, 0.5, size=50)
    result = compare_groups(shifted, normal)
    assert result.p_value < 0.01 and result.auc > 0.8
    assert result.rank_biserial == pytest.approx(2 * result.auc - 1)
    assert result.median_ratio > 2.0
    # One-sided: a group shifted down is not "more surprising".
    assert compare_groups(normal, shifted).p_value > 0.99


def test_statistic_does_not_separate_an_identical_group():
    rng = np.random.default_rng(1)
    normal = rng.lognormal(0.0, 0.5, size=50)
    same = compare_groups(normal.copy(), normal)
    assert same.auc == pytest.approx(0.5) and same.p_value > 0.4
    resampled = compare_groups(rng.lognormal(0.0, 0.5, size=50), normal)
    assert resampled.p_value > 0.01
    with pytest.raises(ValueError, match='samples'):
        compare_groups(np.array([]), normal)


def test_transition_surprise_matches_the_teacher_forced_pass(model):
    rng = np.random.default_rng(2)
    k = 6
    pixels = rng.integers(0, 256, size=(k + 1, 64, 64, 3), dtype=np.uint8)
    raw = rng.uniform(-1, 1, size=(k, 5, 2))
    s = transition_surprise(model, META, pixels, raw)
    assert s.shape == (k,) and np.isnan(s[:2]).all() and np.isfinite(s[2:]).all()
    # The forward pass takes one block per frame and ignores the last frame's: pad with zeros.
    blocks = torch.from_numpy(np.concatenate([META.normalize_blocks(raw), np.zeros((1, 10), np.float32)]))
    with torch.inference_mode():
        for t in range(2, k):
            # Window of frames t-2..t+1 with their blocks: the forward pass predicts t+1 from t-2..t.
            out = model(normalize_images(torch.from_numpy(pixels[t - 2:t + 2]))[None], blocks[t - 2:t + 2][None])
            expected = ((out.pred[0, -1] - out.emb[0, -1]) ** 2).sum().item()
            assert s[t] == pytest.approx(expected, rel=1e-4)


def test_matched_rollouts_differ_only_from_the_perturbation():
    task = make_task('tworoom', image_size=64, seed=0)
    try:
        runs = {}
        for kind in ('normal', 'teleport'):
            _, policy = make_policy(PolicyConfig(kind='heuristic'), task, np.random.default_rng(5))
            perturb = None if kind == 'normal' else (lambda t: t.teleport(np.random.default_rng(9)))
            runs[kind] = rollout(task, policy, blocks=5, frameskip=5, env_seed=11,
                                 perturb_step=None if perturb is None else 12, perturb=perturb)
        normal, teleported = runs['normal'], runs['teleport']
        assert normal.pixels.shape == (6, 64, 64, 3) and normal.actions.shape == (5, 5, 2)
        # Step 12 lies in block 2 (steps 10..14): frames 0..2 agree, frame 3 on differ.
        np.testing.assert_array_equal(normal.pixels[:3], teleported.pixels[:3])
        np.testing.assert_array_equal(normal.actions[:2], teleported.actions[:2])
        np.testing.assert_array_equal(normal.actions[2, :2], teleported.actions[2, :2])
        jump = np.linalg.norm(normal.state[3, :2] - teleported.state[3, :2])
        assert jump > 0.05 and not np.array_equal(normal.pixels[3], teleported.pixels[3])
    finally:
        task.close()


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match='episodes'):
        SurpriseConfig(episodes=0)
    with pytest.raises(ValueError, match='steps'):
        SurpriseConfig(steps=0)


def test_surprise_cli_end_to_end(tmp_path, model):
    torch.set_num_threads(1)
    save_model_dir(model, tmp_path / 'model', META)
    out = tmp_path / 'out' / 'surprise.json'
    rc = cli.main(['surprise', '--model-dir', str(tmp_path / 'model'), '--episodes', '3', '--steps', '22',
                   '--device', 'cpu', '--out', str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report['config']['task'] == 'tworoom' and report['frameskip'] == 5 and report['history'] == 3
    assert len(report['records']) == 3
    for record in report['records']:
        assert 2 <= record['block'] <= 3 and 5 * record['block'] <= record['step'] < 5 * record['block'] + 5
        assert all(np.isfinite(record[k]) and record[k] > 0 for k in ('normal', 'teleport', 'recolor'))
    assert report['groups']['normal_all']['n'] == 3 * 2
    for kind in ('teleport', 'recolor'):
        t = report['tests'][kind]
        assert t['n_perturbed'] == t['n_normal'] == 3 and 0.0 <= t['p_value'] <= 1.0
    assert out.with_suffix('.png').stat().st_size > 10_000
    # Too short for one full-history transition: a clear error, no output.
    rc = cli.main(['surprise', '--model-dir', str(tmp_path / 'model'), '--steps', '10', '--device', 'cpu',
                   '--out', str(tmp_path / 'short.json')])
    assert rc == 2 and not (tmp_path / 'short.json').exists()
