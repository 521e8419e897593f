"""TensorRT 10 / 11 without a GPU: the version gate (fake version strings), the build recipe
against a fake ``tensorrt`` module that has only what a given major has (11: no BuilderFlag.FP16,
no precision constraints), and the build-progress log."""
from __future__ import annotations

import logging
import sys
import threading
import types
from pathlib import Path

import pytest

from lewm_ros.runtime.build_progress import BuildProgress, progress_monitor
from lewm_ros.runtime.tensorrt_build import (SUPPORTED_TENSORRT_MAJORS, build_engine, import_tensorrt,
                                             network_flags, tensorrt_major)


# ----- version gate ------------------------------------------------------------------------------
@pytest.mark.parametrize('version, major', [('10.0.1', 10), ('10.3.0', 10), ('10.13.0.35', 10), ('11.0.0', 11),
                                            ('11.4.0.106', 11), ('11', 11)])
def test_supported_majors(version, major):
    assert tensorrt_major(version) == major
    assert SUPPORTED_TENSORRT_MAJORS == (10, 11)


@pytest.mark.parametrize('version', ['8.6.1', '9.3.0.post12.dev1', '12.0.0', '1.7.1.116', 'ten', '', 'unknown'])
def test_unsupported_versions_are_named_with_the_supported_majors(version):
    with pytest.raises(ImportError, match=rf"10\.x and 11\.x; found TensorRT '{version}'"):
        tensorrt_major(version)


def test_import_gate_reads_the_installed_version(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tensorrt', types.SimpleNamespace(__version__='8.6.1'))
    with pytest.raises(ImportError, match="found TensorRT '8.6.1'"):
        import_tensorrt()
    fake = types.SimpleNamespace(__version__='11.4.0.106')
    monkeypatch.setitem(sys.modules, 'tensorrt', fake)
    assert import_tensorrt() is fake
    monkeypatch.setitem(sys.modules, 'tensorrt', None)   # not installed
    with pytest.raises(ImportError, match="'tensorrt'.*not installed"):
        import_tensorrt()


# ----- the build recipe on a fake TensorRT -------------------------------------------------------
class _Enum:
    def __init__(self, **members: int) -> None:
        for name, value in members.items():
            setattr(self, name, value)


def fake_tensorrt(version: str, calls: list, dynamic: bool = False, phases: bool = True) -> types.SimpleNamespace:
    """What build_engine touches, as TensorRT ``version`` has it: 11 has no BuilderFlag.FP16 /
    PREFER_PRECISION_CONSTRAINTS (an attempt to use them raises AttributeError)."""
    major = int(version.split('.')[0])
    flags = {'TF32': 7} if major >= 11 else {'TF32': 7, 'FP16': 0, 'PREFER_PRECISION_CONSTRAINTS': 11}

    class Tensor:
        name, shape = 'pixels', (-1, 3, 32, 32) if dynamic else (2, 3, 32, 32)

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return Tensor()

    class Config:
        progress_monitor = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(('workspace', size))

        def clear_flag(self, flag):
            calls.append(('clear_flag', flag))

        def set_flag(self, flag):
            calls.append(('set_flag', flag))

        def add_optimization_profile(self, profile):
            calls.append(('profile', profile.shapes))

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            self.shapes[name] = (low, opt, high)

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(('create_network', flags))
            return Network()

        def create_builder_config(self):
            self.config = Config()
            return self.config

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            monitor = config.progress_monitor
            calls.append(('monitor', monitor is not None))
            if phases and monitor is not None:
                monitor.phase_start('Building engine', None, 2)
                monitor.step_complete('Building engine', 0)
                monitor.phase_finish('Building engine')
            return b'engine-bytes'

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls.append(('parse', path))
            return True

    class ILogger:
        Severity = _Enum(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        def __init__(self):
            pass

    class IProgressMonitor:
        def __init__(self):
            pass

    return types.SimpleNamespace(__version__=version, Builder=Builder, OnnxParser=Parser, ILogger=ILogger,
                                 IProgressMonitor=IProgressMonitor, BuilderFlag=_Enum(**flags),
                                 NetworkDefinitionCreationFlag=_Enum(EXPLICIT_BATCH=0, STRONGLY_TYPED=1),
                                 MemoryPoolType=_Enum(WORKSPACE=0))


@pytest.fixture(autouse=True)
def _fresh_trt_logger(monkeypatch):
    monkeypatch.setattr('lewm_ros.runtime.tensorrt_build._TRT_LOGGER', None)


@pytest.mark.parametrize('version', ['10.3.0', '11.4.0.106'])
@pytest.mark.parametrize('precision', ['fp16', 'fp32'])
def test_one_strongly_typed_recipe_for_both_majors(version, precision, caplog):
    calls: list = []
    trt = fake_tensorrt(version, calls)
    caplog.set_level(logging.INFO)
    data = build_engine(trt, Path('/x/rollout_cost_k2.onnx'), precision, workspace_bytes=1 << 20,
                        label='rollout_cost_k2')
    assert data == b'engine-bytes'
    assert ('create_network', 1 << 1) in calls and network_flags(trt) == 2   # STRONGLY_TYPED
    assert ('parse', '/x/rollout_cost_k2.onnx') in calls and ('workspace', 1 << 20) in calls
    assert not [c for c in calls if c[0] == 'set_flag']           # precision comes from the ONNX types
    assert (('clear_flag', 7) in calls) == (precision == 'fp32')  # fp32 means no TF32
    assert ('monitor', True) in calls
    text = caplog.text
    assert f'building TensorRT {precision} engine for rollout_cost_k2' in text
    assert "phase 'Building engine' started (2 steps)" in text
    assert f'built TensorRT {precision} engine for rollout_cost_k2' in text


def test_dynamic_batch_gets_one_profile_and_needs_max_batch():
    calls: list = []
    build_engine(fake_tensorrt('11.0.0', calls, dynamic=True), Path('encoder.onnx'), 'fp16', max_batch=2)
    assert ('profile', {'pixels': ((1, 3, 32, 32), (1, 3, 32, 32), (2, 3, 32, 32))}) in calls
    with pytest.raises(ValueError, match='max_batch must be >= 1'):
        build_engine(fake_tensorrt('11.0.0', [], dynamic=True), Path('encoder.onnx'), 'fp16')


def test_build_refuses_unsupported_versions_and_precisions():
    with pytest.raises(ImportError, match="found TensorRT '12.1.0'"):
        build_engine(fake_tensorrt('12.1.0', []), Path('a.onnx'), 'fp16')
    with pytest.raises(ValueError, match="precision='int8'"):
        build_engine(fake_tensorrt('11.0.0', []), Path('a.onnx'), 'int8')


# ----- progress log ------------------------------------------------------------------------------
def test_heartbeat_logs_elapsed_time_and_phase(caplog):
    caplog.set_level(logging.INFO)
    beat = threading.Event()
    with BuildProgress('encoder (/c/encoder.onnx)', 'fp16', interval_s=0.02) as progress:
        progress.phase_start('Tactic selection', None, 40)
        progress.phase_start('Timing', 'Tactic selection', 5)
        assert progress.step_complete('Timing', 1) is True
        for _ in range(200):
            if 'still building' in caplog.text:
                break
            beat.wait(0.01)
    assert 'building TensorRT fp16 engine for encoder (/c/encoder.onnx)' in caplog.text
    assert "still building TensorRT fp16 engine for encoder (/c/encoder.onnx)" in caplog.text
    assert "phase 'Timing' step 2/5" in caplog.text          # the innermost running phase
    assert 'built TensorRT fp16 engine for encoder (/c/encoder.onnx) in' in caplog.text
    assert progress.status() == "phase 'Timing' step 2/5"
    progress.phase_finish('Timing')
    assert progress.status() == "phase 'Tactic selection' step 0/40"


def test_failed_build_is_logged_with_its_time(caplog):
    with pytest.raises(RuntimeError), BuildProgress('k3', 'fp32', interval_s=60, clock=iter([0.0, 75.0]).__next__):
        raise RuntimeError('out of memory')
    assert 'TensorRT fp32 engine build for k3 failed after 75.0 s: out of memory' in caplog.text


def test_progress_monitor_forwards_to_the_log():
    trt = fake_tensorrt('10.3.0', [])
    progress = BuildProgress('g', 'fp16')
    monitor = progress_monitor(trt, progress)
    assert isinstance(monitor, trt.IProgressMonitor)
    monitor.phase_start('Building engine', None, 3)
    assert monitor.step_complete('Building engine', 0) is True
    assert progress.status() == "phase 'Building engine' step 1/3"
    monitor.phase_finish('Building engine')
    assert progress.status() == ''
    with pytest.raises(ValueError, match='interval_s'):
        BuildProgress('g', 'fp16', interval_s=0)
