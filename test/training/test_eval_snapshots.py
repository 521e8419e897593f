"""The success-vs-training-steps curve from a tiny real run: ``fit --keep-snapshots`` keeps one
model per checkpoint, ``lewm-train eval-snapshots`` evaluates each on the same episodes and
draws the curve."""
import json

import pytest
import torch

from lewm_training.cli import main
from lewm_training.collect import CollectConfig, collect
from lewm_training.eval_snapshots import snapshot_dirs
from lewm_training.fit import fit
from lewm_training.policies import PolicyConfig
from lewm_training.synthetic import tiny_model_config
from lewm_training.train_config import TrainConfig


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp('snapshots')
    collect(CollectConfig(task='tworoom', episodes=6, steps=30, image_size=32, seed=1, episodes_per_shard=3,
                          policy=PolicyConfig('mix', 0.5)), root / 'data', workers=1)
    model_json = root / 'tiny.json'
    model_json.write_text(json.dumps(tiny_model_config(image_size=32).to_reference_dict()))
    fit(TrainConfig(data=str(root / 'data'), out=str(root / 'run'), model_config=str(model_json), steps=10,
                    batch_size=8, lr=2e-3, log_every=5, val_every=10, checkpoint_every=5, sigreg_proj=64,
                    bn_recal_windows=16, threads=1, tensorboard=False, progress=False, val_frac=0.2,
                    keep_snapshots=True))
    torch.set_num_threads(threads)
    return root / 'run'


def test_fit_keeps_a_snapshot_per_checkpoint(run_dir):
    found = snapshot_dirs(run_dir)
    assert [step for step, _ in found] == [5, 10]
    assert all(json.loads((path / 'lewm_meta.json').read_text())['extra']['steps'] == step for step, path in found)
    # the last snapshot is the exported model
    assert (found[-1][1] / 'weights.pt').read_bytes() == (run_dir / 'model' / 'weights.pt').read_bytes()


def test_eval_snapshots_writes_one_point_per_snapshot_and_the_curve(run_dir, tmp_path):
    out = tmp_path / 'curve.json'
    assert main(['eval-snapshots', str(run_dir), '--episodes', '2', '--budget', '5', '--goal-offset', '5',
                 '--samples', '8', '--iterations', '1', '--threads', '1', '--no-progress', '--out', str(out)]) == 0
    report = json.loads(out.read_text())
    assert [row['step'] for row in report['snapshots']] == [5, 10]
    assert all(row['lewm']['episodes'] == 2 and row['lewm']['plans'] == 2 for row in report['snapshots'])
    assert report['random']['episodes'] == 2 and 'CEM 8 x 1' in report['planner']
    assert out.with_suffix('.png').stat().st_size > 1000


def test_eval_snapshots_without_snapshots_says_how_to_keep_them(tmp_path):
    with pytest.raises(SystemExit, match='--keep-snapshots'):
        main(['eval-snapshots', str(tmp_path), '--out', str(tmp_path / 'c.json')])
