"""A model trained on a task built with constructor options (``collect --task-arg``) records them
in its metadata, and the tools that build the task with its defaults refuse it, naming the
file, instead of planning on frames unlike its training data."""
import json

import pytest

from lewm_ros.model.metadata import ModelMetadata
from lewm_training import cli
from lewm_training.collect import CollectConfig, collect
from lewm_training.demo import DemoConfig, run_demo
from lewm_training.fit import fit
from lewm_training.synthetic import tiny_model_config
from lewm_training.tasks import require_default_task
from lewm_training.train_config import TrainConfig


@pytest.fixture(scope='module')
def model_with_options(tmp_path_factory):
    root = tmp_path_factory.mktemp('options')
    collect(CollectConfig(task='reacher', episodes=4, steps=30, image_size=32, episodes_per_shard=2,
                          task_kwargs={'show_target': True}), root / 'data', workers=1)
    (root / 'tiny.json').write_text(json.dumps(tiny_model_config().to_reference_dict()))
    fit(TrainConfig(data=str(root / 'data'), out=str(root / 'run'), model_config=str(root / 'tiny.json'),
                    steps=2, batch_size=4, val_every=2, checkpoint_every=2, bn_recal_windows=8, sigreg_proj=16,
                    threads=1, progress=False, tensorboard=False))
    return root / 'run' / 'model'


def test_the_options_are_recorded_and_the_default_task_tools_refuse_the_model(model_with_options, caplog):
    meta = ModelMetadata.load(model_with_options)
    assert meta.extra['task_kwargs'] == {'show_target': True}
    with pytest.raises(ValueError, match=r'lewm_meta\.json.*show_target'):
        require_default_task(meta, model_with_options, 'lewm-train eval')
    with pytest.raises(SystemExit, match=r'lewm_meta\.json.*show_target'):
        cli.main(['eval', '--model-dir', str(model_with_options), '--episodes', '1', '--no-random'])
    assert cli.main(['surprise', '--model-dir', str(model_with_options), '--episodes', '1',
                     '--out', str(model_with_options.parent / 'surprise.json')]) == 2
    assert cli.main(['surprise', '--model-dir', str(model_with_options), '--calibrate']) == 2
    assert 'show_target' in caplog.text
    with pytest.raises(ValueError, match=r'lewm_meta\.json.*show_target'):   # before any node starts
        run_demo(DemoConfig(model_dir=model_with_options, task='reacher', out=model_with_options.parent / 'demo'))


def test_a_model_of_the_default_task_passes():
    meta = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=32, action_mean=[0.0, 0.0],
                         action_std=[1.0, 1.0], action_low=[-1.0, -1.0], action_high=[1.0, 1.0], task='reacher',
                         extra={'training_command': 'lewm-train fit ...'})
    require_default_task(meta, 'models/x', 'lewm-train eval')   # no options recorded: nothing to refuse
