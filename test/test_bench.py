"""lewm-bench --quick: a real (tiny) benchmark run end to end, JSON + Markdown output; the rollout
benchmark (python -m lewm_ros.bench.rollout)."""
from __future__ import annotations

import json

from lewm_ros.bench import QUICK_BUDGET, main, paper_budget
from lewm_ros.bench.rollout import main as rollout_main


def test_quick_bench_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert main(['--quick', '--threads', '1', '--backend', 'torch', 'onnxruntime', 'tensorrt',
                 '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    machine = report['machine']
    assert 0 < machine['gemm_peak_gflops_min'] <= machine['gemm_peak_gflops']
    rows = {r['backend']: r for r in report['results']}
    assert set(rows) == {'torch', 'onnxruntime', 'tensorrt'}
    for name in ('torch', 'onnxruntime'):
        row = rows[name]
        assert row['samples'] == QUICK_BUDGET.cem.num_samples and not row['extrapolated']
        assert 0 < row['encode_ms_p50'] and 0 < row['plan_ms_p50'] <= row['plan_ms_p99']
        assert row['plans_per_s'] == 1e3 / row['plan_ms_p50']
        assert row['gflop_per_plan'] > 0 and row['gflops'] > 0 and row['naive_speedup'] > 0
        assert machine['gemm_peak_gflops_min'] <= row['gemm_peak_gflops'] <= machine['gemm_peak_gflops']
    table = capsys.readouterr().out
    assert '| compact | quick (16 x 2 x 3) | torch |' in table and '| onnxruntime |' in table
    if 'skipped' in rows['tensorrt']:  # no TensorRT here: reported, not silently dropped
        assert 'tensorrt' in rows['tensorrt']['skipped']


def test_shortened_paper_budget_is_labelled_extrapolated():
    budget = paper_budget(3)
    cem = budget.cem
    assert (cem.num_samples, cem.iterations, cem.horizon, budget.timed_iterations) == (300, 30, 5, 3)
    assert budget.extrapolated and not paper_budget().extrapolated


def test_cost_terms_reach_the_report(tmp_path):
    out = tmp_path / 'bench.json'
    assert main(['--quick', '--threads', '1', '--backend', 'torch', '--no-naive', '--cost', 'stage=0.5',
                 '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['cost'] == {'terminal_weight': 1.0, 'stage_weight': 0.5, 'action_weight': 0.0,
                              'smoothness_weight': 0.0}


def test_rollout_bench_smoke(tmp_path):
    """The benchmark CLI runs and reports a consistent result (tiny sizes: timings not asserted)."""
    out = tmp_path / 'bench.json'
    assert rollout_main(['--preset', 'compact', '--samples', '8', '--horizon', '2', '--repeats', '1',
                         '--threads', '1', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    assert result['max_rel_diff'] <= 1e-4 and result['naive_gflop'] > result['efficient_gflop'] > 0
