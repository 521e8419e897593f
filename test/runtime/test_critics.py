"""Critics: cost terms from the command line (TERM=WEIGHT), errors that name the item."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from lewm_ros.runtime.critics import COST_TERMS, LatentCostConfig, add_cost_argument, parse_cost_terms


def test_parse_cost_terms_over_the_paper_default():
    assert parse_cost_terms([]) == LatentCostConfig()
    assert parse_cost_terms(['stage=0.5', 'action=0.01']) == LatentCostConfig(stage_weight=0.5, action_weight=0.01)
    assert parse_cost_terms(['terminal=0', 'stage=1']) == LatentCostConfig(terminal_weight=0.0, stage_weight=1.0)
    base = LatentCostConfig(smoothness_weight=2.0)
    assert parse_cost_terms(['smoothness=0'], base) == LatentCostConfig()
    assert set(COST_TERMS) == {'terminal', 'stage', 'action', 'smoothness'}


@pytest.mark.parametrize('items, message', [(['effort=1'], "'effort=1' must be TERM=WEIGHT"),
                                            (['stage'], "'stage' must be TERM=WEIGHT"),
                                            (['stage=much'], "weight 'much' is not a number"),
                                            (['stage=1', 'stage=2'], 'given twice'),
                                            (['action=-1'], r'cost.action_weight=-1.0 is out of range'),
                                            (['terminal=0'], 'ignore the goal')])
def test_parse_cost_terms_errors_name_the_item(items, message):
    with pytest.raises(ValueError, match=message):
        parse_cost_terms(items)


def test_cost_argument_is_repeatable_and_checks_syntax(capsys):
    parser = argparse.ArgumentParser()
    add_cost_argument(parser)
    args = parser.parse_args(['--cost', 'stage=0.5', '--cost', 'action=0.01'])
    assert parse_cost_terms(args.cost) == LatentCostConfig(stage_weight=0.5, action_weight=0.01)
    assert parser.parse_args([]).cost == []
    with pytest.raises(SystemExit):
        parser.parse_args(['--cost', 'stage:0.5'])
    assert 'must be TERM=WEIGHT' in capsys.readouterr().err


def test_static_shape_backends_do_not_import_the_exporter():
    """ONNX Runtime / TensorRT backends read exports through the manifest module only."""
    code = ('import sys, lewm_ros.runtime.onnx_backend, lewm_ros.runtime.tensorrt_backend; '
            'assert "lewm_ros.runtime.export" not in sys.modules, "exporter imported"')
    subprocess.run([sys.executable, '-c', code], check=True)
