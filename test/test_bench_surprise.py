"""lewm-bench --surprise: one row per backend, plan cycle time without and with the surprise
monitor in one run (a smoke run on a random compact model; the README's numbers come from the
shipped model)."""
import json

from lewm_ros.bench.cli import main
from lewm_ros.model import LeWM, ModelMetadata, preset, save_model_dir


def test_surprise_rows(tmp_path):
    model_dir = save_model_dir(LeWM(preset('compact', action_dim=2, frameskip=5)).eval(), tmp_path / 'compact',
                               ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0, 0],
                                             action_std=[1, 1], action_low=[-1, -1], action_high=[1, 1]))
    out = tmp_path / 'bench.json'
    assert main(['--surprise', '--model-dir', str(model_dir), '--backend', 'torch', '--decisions', '3',
                 '--threads', '1', '--json', str(out)]) == 0
    (row,) = json.loads(out.read_text())['results']
    assert row['backend'] == 'torch' and row['decisions'] == 3 and (row['samples'], row['horizon']) == (64, 5)
    assert row['plan_ms_p50'] > 0 and row['plan_ms_p50_monitor'] > 0 and row['predictor_step_ms_p50'] > 0
    assert {'overhead_pct', 'predictor_step_pct'} <= set(row)
