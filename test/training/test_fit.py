"""``lewm-train fit``: exact resume after SIGKILL (real subprocesses), checkpoint format, config
validation, schedule, BatchNorm recalibration, logs."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from lewm_ros.model import LeWM
from lewm_training.fit import BatchNormaliser, fit
from lewm_training.synthetic import SyntheticDots, SyntheticDotsConfig, tiny_model_config
from lewm_training.train_config import TrainConfig
from lewm_training.train_data import BatchOrder, load_training_data
from lewm_training.train_eval import recalibrate_batchnorm
from lewm_training.train_logging import CsvLog, embedding_stats
from lewm_training.train_state import capture_rng, restore_rng

STEPS = 60


def fit_command(out, model_json, steps=STEPS):
    return [sys.executable, '-m', 'lewm_training.cli', 'fit', '--data', 'synthetic:episodes=12,length=40',
            '--out', str(out), '--model-config', str(model_json), '--steps', str(steps), '--batch-size', '8',
            '--lr', '2e-3', '--log-every', '5', '--val-every', '20', '--checkpoint-every', '10',
            '--sigreg-proj', '64', '--bn-recal-windows', '32', '--threads', '1', '--no-progress',
            '--no-tensorboard']


def checkpoint_step(out) -> int:
    return torch.load(out / 'checkpoint.pt', weights_only=True)['step']


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model_json(tmp_path):
    path = tmp_path / 'tiny.json'
    # dropout > 0: resume must restore the torch RNG stream exactly, not only data order.
    path.write_text(json.dumps(tiny_model_config(dropout=0.1).to_reference_dict()))
    return path


def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path, model_json):
    env = {**os.environ, 'PYTHONHASHSEED': '0'}
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    subprocess.run(fit_command(full, model_json), check=True, env=env, capture_output=True, timeout=120)

    proc = subprocess.Popen(fit_command(killed, model_json), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not (killed / 'checkpoint.pt').exists():
        assert proc.poll() is None and time.monotonic() < deadline, 'run ended before its first checkpoint'
        time.sleep(0.02)
    time.sleep(0.3)                                   # kill somewhere past the first checkpoint
    assert proc.poll() is None, 'run finished before it could be killed'
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    killed_at = checkpoint_step(killed)
    assert 10 <= killed_at < STEPS

    subprocess.run(fit_command(killed, model_json), check=True, env=env, capture_output=True, timeout=120)

    a = torch.load(full / 'checkpoint.pt', weights_only=True)
    b = torch.load(killed / 'checkpoint.pt', weights_only=True)
    assert a['step'] == b['step'] == STEPS
    for key, value in a['model'].items():
        assert torch.equal(value, b['model'][key]), key
    for pid, state in a['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(value, b['optimizer']['state'][pid][name]), (pid, name)
    assert a['scheduler']['last_epoch'] == b['scheduler']['last_epoch'] == STEPS
    assert a['sigreg_calls'] == b['sigreg_calls']
    # Logged losses agree step for step (rows of the killed segment were replaced on resume).
    columns = ('step', 'loss', 'pred', 'sigreg', 'lr', 'grad_norm', 'emb_rank')
    rows = [[{k: r[k] for k in columns} for r in csv.DictReader(open(run / 'train.csv'))] for run in (full, killed)]
    assert rows[0] == rows[1] and len(rows[0]) == STEPS // 5
    # The exported models are identical too (same BatchNorm recalibration).
    wa = torch.load(full / 'model' / 'weights.pt', weights_only=True)
    wb = torch.load(killed / 'model' / 'weights.pt', weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def short_run(out, model_json, steps=10, **changes) -> TrainConfig:
    return TrainConfig(**{**dict(data='synthetic:episodes=12,length=40', out=str(out), model_config=str(model_json),
                                 steps=steps, batch_size=8, lr=2e-3, log_every=5, val_every=20, checkpoint_every=10,
                                 sigreg_proj=64, bn_recal_windows=32, threads=1, tensorboard=False, progress=False),
                          **changes})


def test_resume_refuses_changed_settings_and_no_resume(tmp_path, model_json):
    out = tmp_path / 'run'
    fit(short_run(out, model_json))
    with pytest.raises(ValueError, match='lr: checkpoint has 0.002, now 0.001'):
        fit(short_run(out, model_json, steps=20, lr=1e-3))
    with pytest.raises(ValueError, match='already holds a checkpoint at step 10'):
        fit(short_run(out, model_json, steps=20, resume=False))
    assert checkpoint_step(out) == 10
    # Same settings and more steps: continues from step 10 (steps may change, with a warning).
    assert fit(short_run(out, model_json, steps=15)).step == 15


def test_checkpoint_loads_weights_only_with_everything_needed(tmp_path, model_json):
    out = tmp_path / 'run'
    fit(short_run(out, model_json), command='lewm-train fit --data synthetic')
    state = torch.load(out / 'checkpoint.pt', weights_only=True)
    assert {'step', 'model', 'optimizer', 'scheduler', 'sigreg_calls', 'rng', 'world_size', 'elapsed_s',
            'config'} <= set(state)
    assert TrainConfig.from_dict(state['config']).steps == 10
    assert json.loads((out / 'train_config.json').read_text())['lr'] == 2e-3
    meta = json.loads((out / 'model' / 'lewm_meta.json').read_text())
    assert meta['extra']['training_command'] == 'lewm-train fit --data synthetic'
    assert meta['extra']['steps'] == 10 and meta['extra']['train_windows'] > 0
    assert len(meta['action_mean']) == 2 and meta['preset'] == 'custom:tiny.json'
    assert not list(out.glob('.*.tmp'))


def test_rng_capture_restores_every_stream():
    import random
    import numpy as np
    state = capture_rng()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


@pytest.mark.parametrize('field, value, message', [
    ('steps', 0, 'steps=0 is out of range; allowed: >= 1'),
    ('lr', -1.0, 'lr=-1.0 is out of range'),
    ('warmup_steps', 50, 'warmup_steps=50 is out of range; allowed: <= steps (10)'),
    ('preset', 'huge', "preset='huge' is not allowed"),
    ('val_frac', 1.0, 'val_frac=1.0 is out of range; allowed: [0, 1)'),
])
def test_train_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[')):
        TrainConfig(**{'data': 'synthetic', 'out': 'x', 'steps': 10, field: value})


def test_lr_defaults_and_schedule():
    assert TrainConfig(data='d', out='o', preset='paper').lr == 5e-5
    cfg = TrainConfig(data='d', out='o', preset='compact', steps=100, warmup_steps=10)
    assert cfg.lr == 5e-4
    factors = [cfg.lr_factor(s) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))        # cosine decays monotonically
    assert factors[-1] == pytest.approx(0.0, abs=1e-3)


def test_action_stats_come_from_train_episodes_only():
    data = load_training_data('synthetic:episodes=10,length=30', history=3, frameskip=5, val_frac=0.3,
                              split_seed=0, image_size=64)
    source = SyntheticDots(SyntheticDotsConfig(episodes=10, length=30, image_size=64))
    from lewm_training.dataset import split_episodes
    train_eps, _ = split_episodes(10, val_frac=0.3, seed=0)
    mean, std = source.action_stats([int(e) for e in train_eps])
    assert data.info.action_mean == pytest.approx(tuple(mean)) and data.info.action_std == pytest.approx(tuple(std))
    assert data.info.action_mean != pytest.approx(tuple(source.action_stats()[0]))
    assert data.info.train_episodes == 7 and data.info.val_episodes == 3


def test_batch_order_is_a_resumable_partition():
    order = BatchOrder(num_windows=50, rank_batch=4, seed=3, rank=0, world_size=2)
    other = BatchOrder(num_windows=50, rank_batch=4, seed=3, rank=1, world_size=2)
    assert order.batches_per_epoch == 6 and order.position(13) == (2, 1)
    mine, theirs = order.epoch_batches(2), other.epoch_batches(2)
    assert len(set(mine.ravel()) | set(theirs.ravel())) == 48                 # disjoint shards
    assert (mine == order.epoch_batches(2)).all() and not (mine == order.epoch_batches(3)).all()


def test_batchnorm_recalibration_uses_exact_averages_and_keeps_weights():
    data = load_training_data('synthetic:episodes=4,length=30', history=3, frameskip=5, val_frac=0.0,
                              split_seed=0, image_size=32).train
    torch.manual_seed(0)
    model = LeWM(tiny_model_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    normaliser = BatchNormaliser((0.0, 0.0), (1.0, 1.0), torch.device('cpu'))
    recalibrate_batchnorm(model, data, normaliser, windows=len(data), batch_size=len(data), seed=0)
    bn = model.projector.net[1]
    assert not model.training and bn.momentum == 0.1
    with torch.no_grad():                                    # one batch of everything: the exact stats
        windows = [data[i] for i in range(len(data))]
        pixels, _ = normaliser(torch.stack([w.pixels for w in windows]), torch.stack([w.actions for w in windows]))
        hidden = model.projector.net[0](model.encoder(pixels.reshape(-1, *pixels.shape[-3:])))
    assert torch.allclose(bn.running_mean, hidden.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, hidden.var(0), rtol=1e-4, atol=1e-6)
    changed = [k for k in before if not torch.equal(before[k], model.state_dict()[k])]
    assert changed and all('running' in k or 'num_batches' in k for k in changed)


def test_embedding_stats_and_csv_truncation(tmp_path):
    torch.manual_seed(0)
    iso = embedding_stats(torch.randn(4000, 8))
    line = embedding_stats(torch.randn(4000, 1) * torch.ones(1, 8))
    assert iso.effective_rank > 7.5 and line.effective_rank < 1.01 and iso.mean_std == pytest.approx(1, abs=0.05)
    log = CsvLog(tmp_path / 'a.csv', ('step', 'loss'), keep_until=0)
    for step in (5, 10, 15):
        log.write({'step': step, 'loss': 1.0 / step})
    CsvLog(tmp_path / 'a.csv', ('step', 'loss'), keep_until=10)
    assert [r['step'] for r in csv.DictReader(open(tmp_path / 'a.csv'))] == ['5', '10']


def test_global_batchnorm_is_plain_batchnorm_in_one_process():
    from lewm_training.distributed import GlobalBatchNorm1d, convert_batchnorm
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    synced = convert_batchnorm(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)))
    synced.load_state_dict(plain.state_dict())
    assert isinstance(synced[1], GlobalBatchNorm1d) and set(synced.state_dict()) == set(plain.state_dict())
    x = torch.randn(10, 4)
    assert torch.allclose(plain(x), synced(x))


def test_fit_on_a_collected_mujoco_dataset(tmp_path, model_json):
    """The real data path: ``lewm-train collect`` output -> windows -> train-split action stats ->
    model dir whose metadata matches the dataset."""
    from lewm_training.collect import CollectConfig, collect
    from lewm_training.dataset import action_stats, open_dataset
    from lewm_training.policies import PolicyConfig
    data = tmp_path / 'tworoom'
    collect(CollectConfig(task='tworoom', episodes=6, steps=30, image_size=32, seed=1, episodes_per_shard=3,
                          policy=PolicyConfig('mix', 0.5)), data, workers=1)
    result = fit(short_run(tmp_path / 'run', model_json, data=str(data), val_frac=0.2))
    meta = json.loads((result.model_dir / 'lewm_meta.json').read_text())
    dataset = open_dataset(data)
    from lewm_training.dataset import split_episodes
    train_eps, _ = split_episodes(dataset.num_episodes, val_frac=0.2, seed=0)
    mean, _ = action_stats(dataset, train_eps)
    assert meta['task'] == 'tworoom' and meta['image_size'] == 32
    assert meta['action_mean'] == pytest.approx(mean.tolist(), rel=1e-5)
    assert meta['action_low'] == pytest.approx(dataset.metadata.action_low.tolist())
    assert result.val and result.step == 10
