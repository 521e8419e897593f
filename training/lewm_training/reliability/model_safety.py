"""model-safety: malicious pickles in weights.pt are refused at configure and never run.

Each case is a model directory with the shipped model's config.json and lewm_meta.json and a
weights.pt that would create a marker file when unpickled (builtins.open, os.system, exec,
subprocess.Popen gadgets; bare pickles of several protocols and torch.save zip archives that
hide the gadget inside the real state dict). planner_node is configured on it over a real rclpy
context. First, as a control, one child process unpickles every file unsafely
(``torch.load(weights_only=False)``) and must create every marker: the payloads are live. Holds
when every configure fails, its error names weights.pt, and no marker exists afterwards.
"""
from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from lewm_training.reliability.common import SHIPPED_MODEL, CheckResult, captured_stderr, wait_for


class _Gadget:
    """Unpickles to a call that creates `marker` (never a call made by this kit itself)."""

    def __init__(self, kind: str, marker: Path) -> None:
        self.kind, self.marker = kind, str(marker)

    def __reduce__(self):
        if self.kind == 'open':
            return open, (self.marker, 'w')
        if self.kind == 'os.system':
            return os.system, (f'touch {self.marker}',)
        if self.kind == 'exec':
            return exec, (f"open({self.marker!r}, 'w').close()",)
        return subprocess.Popen, (['touch', self.marker],)


CASES = [('open', 'pickle2'), ('os.system', 'pickle5'), ('exec', 'torch_zip'), ('popen', 'torch_zip'),
         ('open', 'torch_zip'), ('os.system', 'torch_zip')]
"""(gadget, container): pickleN = a bare pickle of protocol N with the gadget as the whole file;
torch_zip = torch.save of the real state dict with the gadget added under one more key."""


def write_case(model_dir: Path, directory: Path, gadget: str, container: str, marker: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ('config.json', 'lewm_meta.json'):
        shutil.copy(model_dir / name, directory / name)
    payload = _Gadget(gadget, marker)
    if container.startswith('pickle'):
        with open(directory / 'weights.pt', 'wb') as f:
            pickle.dump({'encoder.weight': payload}, f, protocol=int(container[len('pickle'):]))
    else:
        state = torch.load(model_dir / 'weights.pt', map_location='cpu', weights_only=True)
        torch.save({**state, 'extra': payload}, directory / 'weights.pt')
    return directory


def payloads_are_live(files: list[Path], markers: list[Path]) -> bool:
    """Unpickle every file unsafely in a child process; True when every marker appeared (then removed)."""
    code = ('import pickle, sys, torch\nfor path in sys.argv[1:]:\n    try:\n'
            '        torch.load(path, weights_only=False)\n'
            '    except Exception:\n        pickle.load(open(path, "rb"))\n')
    subprocess.run([sys.executable, '-c', code, *map(str, files)], capture_output=True, timeout=300)
    live = wait_for(lambda: all(m.exists() for m in markers), 5.0)
    for marker in markers:
        marker.unlink(missing_ok=True)
    return live


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model-dir', type=Path, default=SHIPPED_MODEL, help='source of config.json / lewm_meta.json')
    parser.add_argument('--cases', type=int, default=len(CASES), help=f'run the first N of the {len(CASES)} cases')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: ROS_DOMAIN_ID)')


def run(args: argparse.Namespace) -> CheckResult:
    from lewm_training.reliability.rig import Rig, RigConfig
    result = CheckResult('model-safety')
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        cases_run = CASES[:args.cases]
        markers = [Path(tmp) / f'marker_{index}' for index in range(len(cases_run))]
        directories = [write_case(args.model_dir, Path(tmp) / f'model_{index}', gadget, container, marker)
                       for index, ((gadget, container), marker) in enumerate(zip(cases_run, markers))]
        live = payloads_are_live([d / 'weights.pt' for d in directories], markers)
        result.require(live, 'control: unpickling the files unsafely did not create every marker')
        for (gadget, container), marker, directory in zip(cases_run, markers, directories):
            rig = Rig(RigConfig(model_dir=directory, domain_id=args.domain_id), Path(tmp))
            try:
                with captured_stderr() as read:
                    configured = rig.start()
                    log = read()
            finally:
                rig.close()
            case = {'gadget': gadget, 'container': container, 'refused': not configured,
                    'executed': marker.exists(), 'error_names_file': str(directory / 'weights.pt') in log}
            cases.append(case)
            result.require(case['refused'] and not case['executed'] and case['error_names_file'],
                           f'{gadget} in {container}: {case}')
    refused = sum(c['refused'] and not c['executed'] for c in cases)
    result.figures = {'cases': len(cases), 'refused_unexecuted': refused, 'payloads_live': live, 'details': cases}
    executed = sum(c['executed'] for c in cases)
    gadgets, containers = sorted({c['gadget'] for c in cases}), sorted({c['container'] for c in cases})
    result.summary = [f'{refused} of {len(cases)} malicious weights.pt refused at configure, {executed} executed '
                      f'(payloads live when unpickled unsafely: {live}; gadgets {gadgets}, containers {containers})']
    return result
