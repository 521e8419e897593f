"""lewm-train probe: ridge / MLP probes on synthetic latents, and an end-to-end run on a real
(tiny) collected TwoRoom dataset with a random-weight compact model."""
import json

import numpy as np
import pytest
import torch

from lewm_ros.model import LeWM, ModelMetadata, compact_config, save_model_dir
from lewm_training import cli
from lewm_training.collect import CollectConfig, collect
from lewm_training.policies import PolicyConfig
from lewm_training.probe import MLPProbeConfig, ProbeConfig, fit_mlp, fit_ridge
from lewm_training.probe_targets import angle_errors, probe_metrics, probe_targets, state_names


def _linear_data(rng, n, d=32, q=3, noise=0.01):
    z = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    weight = rng.normal(size=(d, q))
    return z, z @ weight + 2.0 + noise * (z @ weight).std(axis=0) * rng.normal(size=(n, q))


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    z, y = _linear_data(rng, 1200)
    probe = fit_ridge(z[:800], y[:800])
    metrics = probe_metrics(y[800:], probe.predict(z[800:]), ['a', 'b', 'c'])
    for m in metrics.values():
        assert m['pearson_r'] > 0.99 and m['r2'] > 0.98
    assert probe.alpha < 1e-2  # little noise: leave-one-out picks a small penalty


def test_ridge_finds_nothing_in_noise():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1200, 32))
    y = rng.normal(size=(1200, 2))
    probe = fit_ridge(z[:800], y[:800])
    for m in probe_metrics(y[800:], probe.predict(z[800:]), ['a', 'b']).values():
        assert abs(m['pearson_r']) < 0.15 and m['r2'] < 0.02
    assert probe.alpha >= 1.0  # leave-one-out shrinks a useless probe


def test_ridge_matches_the_normal_equations():
    rng = np.random.default_rng(2)
    z, y = _linear_data(rng, 200, d=8, q=2, noise=0.5)
    alpha = 0.05
    probe = fit_ridge(z, y, alpha)
    x = (z - z.mean(0)) / z.std(0)
    weight = np.linalg.solve(x.T @ x / len(x) + alpha * np.eye(8), x.T @ (y - y.mean(0)) / len(x))
    np.testing.assert_allclose(probe.weight, weight, rtol=1e-9, atol=1e-12)
    assert probe.alpha == alpha


def test_mlp_probe_fits_a_nonlinear_map_a_linear_one_cannot():
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    z = rng.uniform(-2, 2, size=(1500, 4))
    y = np.stack([np.sin(2 * z[:, 0]), z[:, 1] ** 2], axis=1)
    mlp = fit_mlp(z[:1000], y[:1000], MLPProbeConfig(hidden=64, epochs=30, batch_size=32, lr=3e-3))
    ridge = fit_ridge(z[:1000], y[:1000])
    m_mlp = probe_metrics(y[1000:], mlp.predict(z[1000:]), ['sin', 'sq'])
    m_ridge = probe_metrics(y[1000:], ridge.predict(z[1000:]), ['sin', 'sq'])
    assert m_mlp['sin']['r2'] > 0.9 and m_mlp['sq']['r2'] > 0.9
    assert m_ridge['sq']['r2'] < 0.1


def test_probe_metrics_values():
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert probe_metrics(y, y, ['v']) == {'v': {'pearson_r': 1.0, 'r2': 1.0}}
    m = probe_metrics(y, -y, ['v'])['v']
    assert m['pearson_r'] == pytest.approx(-1.0) and m['r2'] == pytest.approx(1 - 4 * 14 / 5)
    assert np.isnan(probe_metrics(y, np.ones_like(y), ['v'])['v']['pearson_r'])
    with pytest.raises(ValueError, match='names'):
        probe_metrics(y, y, ['a', 'b'])


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match='val_frac'):
        ProbeConfig(val_frac=1.0)
    with pytest.raises(ValueError, match='ridge_alpha'):
        ProbeConfig(ridge_alpha=-1.0)
    with pytest.raises(ValueError, match='mlp.epochs'):
        MLPProbeConfig(epochs=0)
    with pytest.raises(ValueError, match='alpha'):
        fit_ridge(np.zeros((4, 2)), np.zeros((4, 1)), alpha=-1.0)


def test_state_names():
    assert state_names('tworoom', 4) == ['x', 'y', 'vx', 'vy']
    assert state_names('unknown', 2) == ['state_0', 'state_1']


def test_an_angle_is_probed_as_cosine_and_sine_and_scored_in_degrees():
    names = state_names('pusht', 10)
    angle = np.array([-3.1, -1.0, 0.0, 1.5, 3.1])
    state = np.zeros((5, 10))
    state[:, names.index('block_x')] = [0.1, 0.2, 0.3, 0.4, 0.5]
    state[:, names.index('block_angle')] = angle
    targets, y = probe_targets('pusht', ['block_x', 'block_angle'], names, state)
    assert targets == ['block_x', 'block_angle_cos', 'block_angle_sin']
    np.testing.assert_allclose(y[:, 1:], np.stack([np.cos(angle), np.sin(angle)], axis=1))
    assert angle_errors(y, y, targets)['block_angle']['median_abs_error_deg'] == pytest.approx(0.0, abs=1e-9)
    turned = y.copy()  # predictions 10 degrees off, across the wrap at +-pi as well
    turned[:, 1], turned[:, 2] = np.cos(angle + np.radians(10)), np.sin(angle + np.radians(10))
    errors = angle_errors(y, turned, targets)['block_angle']
    assert errors['median_abs_error_deg'] == pytest.approx(10.0) and errors['p90_abs_error_deg'] == pytest.approx(10.0)
    assert probe_targets('tworoom', ['x'], ['x', 'y'], np.ones((3, 2)))[0] == ['x']  # no angles there
    reacher = state_names('reacher', 6)   # the unlimited shoulder: 2 pi apart is the same pose
    arm = np.zeros((2, 6))
    arm[:, 0] = [0.5, 0.5 + 2 * np.pi]
    targets, y = probe_targets('reacher', ['shoulder', 'wrist', 'target_x'], reacher, arm)
    assert targets == ['shoulder_cos', 'shoulder_sin', 'wrist_cos', 'wrist_sin', 'target_x']
    np.testing.assert_allclose(y[0], y[1], atol=1e-12)


@pytest.fixture(scope='module')
def tiny_model_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('probe')
    torch.manual_seed(0)
    meta = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0.0, 0.0],
                         action_std=[0.5, 0.5], action_low=[-1.0, -1.0], action_high=[1.0, 1.0],
                         task='tworoom', preset='compact')
    save_model_dir(LeWM(compact_config()).eval(), root / 'model', meta)
    collect(CollectConfig(task='tworoom', episodes=4, steps=20, image_size=64, episodes_per_shard=2,
                          policy=PolicyConfig(kind='mix')), root / 'data', workers=1)
    return root


def test_probe_cli_end_to_end(tiny_model_and_data):
    torch.set_num_threads(1)
    root = tiny_model_and_data
    out = root / 'out' / 'probe.json'
    rc = cli.main(['probe', '--model-dir', str(root / 'model'), '--data', str(root / 'data'),
                   '--episodes-val', '3', '--mlp', '--mlp-epochs', '2', '--mlp-hidden', '16',
                   '--device', 'cpu', '--out', str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report['task'] == 'tworoom' and report['names'] == ['x', 'y', 'vx', 'vy']
    assert report['val_episodes'] == [3] and report['train_episodes'] == [0, 1, 2]
    assert report['n_train_frames'] == 63 and report['n_val_frames'] == 21 and report['latent_dim'] == 64
    for kind in ('ridge', 'mlp'):
        for name in report['names']:
            m = report['metrics'][kind][name]
            assert np.isfinite(m['r2']) and -1.0 <= m['pearson_r'] <= 1.0
    assert out.with_suffix('.png').stat().st_size > 10_000


def test_probe_cli_rejects_unknown_quantity(tiny_model_and_data):
    root = tiny_model_and_data
    rc = cli.main(['probe', '--model-dir', str(root / 'model'), '--data', str(root / 'data'),
                   '--quantities', 'z', '--device', 'cpu', '--out', str(root / 'bad.json')])
    assert rc == 2 and not (root / 'bad.json').exists()
