"""Stand-ins for ``tensorrt`` and ``pycuda.driver`` shaped like the real APIs (the calls the
TensorRT backend makes), for the tests that run without an NVIDIA GPU.

Device memory is simulated (address -> bytearray); a fake engine reads its inputs from the
addresses bound with ``set_tensor_address`` and writes its outputs there, so the backend's
buffers, copies and shapes are exercised for real. The engines compute simple stand-in
functions: encoder latents[b, d] = mean(pixels[b]) + d; costs[n] = sum(candidates[n]^2) +
sum(goal^2) + k (k: history frames)."""
from __future__ import annotations

import json
import types

import numpy as np


class FakeCuda:
    """``pycuda.driver``: init, Device, Context, mem_alloc, pagelocked_empty, Stream, async copies."""

    def __init__(self, gpus: int = 1, name: str = 'NVIDIA Jetson AGX Orin', capability: tuple = (8, 7)) -> None:
        self.memory: dict[int, bytearray] = {}
        self.context_depth = 0
        self.initialised = False
        self.allocations: list[int] = []
        fake = self

        class Context:
            @staticmethod
            def pop():
                assert fake.context_depth > 0, 'Context.pop() without a pushed context'
                fake.context_depth -= 1

        class PrimaryContext:
            def push(self):
                fake.context_depth += 1

        class Device:
            def __init__(self, index: int) -> None:
                assert fake.initialised, 'cuda.init() first'
                self.index = index

            @staticmethod
            def count() -> int:
                return gpus

            def name(self) -> str:
                return name

            def compute_capability(self) -> tuple:
                return capability

            def retain_primary_context(self):
                return PrimaryContext()

        class DeviceAllocation:
            def __init__(self, address: int) -> None:
                self.address = address

            def __int__(self) -> int:
                return self.address

        class Stream:
            handle = 0x5EED

            def synchronize(self) -> None:
                pass

        self.Context, self.Device, self.Stream = Context, Device, Stream
        self._allocation = DeviceAllocation

    def init(self) -> None:
        self.initialised = True

    def mem_alloc(self, nbytes: int):
        assert self.context_depth > 0, 'mem_alloc needs a current context'
        address = 0x1000 * (len(self.memory) + 1)
        self.memory[address] = bytearray(nbytes)
        self.allocations.append(nbytes)
        return self._allocation(address)

    @staticmethod
    def pagelocked_empty(shape, dtype) -> np.ndarray:
        return np.empty(shape, dtype)

    def memcpy_htod_async(self, dest, src: np.ndarray, stream) -> None:
        data = np.ascontiguousarray(src).tobytes()
        self.memory[int(dest)][:len(data)] = data

    def memcpy_dtoh_async(self, dest: np.ndarray, src, stream) -> None:
        dest[...] = np.frombuffer(bytes(self.memory[int(src)][:dest.nbytes]), dest.dtype).reshape(dest.shape)

    def module(self) -> types.ModuleType:
        """This object as the ``pycuda.driver`` module."""
        module = types.ModuleType('pycuda.driver')
        for name in ('init', 'Device', 'Context', 'Stream', 'mem_alloc', 'pagelocked_empty', 'memcpy_htod_async',
                     'memcpy_dtoh_async'):
            setattr(module, name, getattr(self, name))
        return module


def fake_tensorrt(cuda: FakeCuda, version: str = '10.3.0') -> types.ModuleType:
    """``tensorrt``: the version, ILogger, Runtime.deserialize_cuda_engine, TensorIOMode, nptype.
    An engine's bytes are JSON: {'stem', 'inputs': {name: shape}, 'outputs': {name: shape}}."""
    trt = types.ModuleType('tensorrt')
    trt.__version__ = version
    trt.float32 = 'float32'
    trt.TensorIOMode = types.SimpleNamespace(INPUT='INPUT', OUTPUT='OUTPUT')
    trt.nptype = lambda dtype: {'float32': np.float32}[dtype]

    class ILogger:
        Severity = types.SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        def __init__(self) -> None:
            pass

    class Runtime:
        def __init__(self, logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes):
            try:
                return Engine(json.loads(data))
            except ValueError:
                return None

    class Context:
        def __init__(self, engine: 'Engine') -> None:
            self.engine = engine
            self.addresses: dict[str, int] = {}
            self.shapes = {name: tuple(shape) for name, shape in engine.tensors.items()}

        def set_input_shape(self, name, shape) -> None:
            self.shapes[name] = tuple(shape)
            if self.engine.stem == 'encoder':
                self.shapes['latents'] = (shape[0], self.engine.tensors['latents'][1])

        def get_tensor_shape(self, name):
            return self.shapes[name]

        def set_tensor_address(self, name, address: int) -> None:
            self.addresses[name] = int(address)

        def execute_async_v3(self, stream_handle: int) -> bool:
            assert cuda.context_depth > 0, 'execute_async_v3 needs a current context'
            read = {name: np.frombuffer(bytes(cuda.memory[self.addresses[name]]), np.float32)
                    [:int(np.prod(self.shapes[name]))].reshape(self.shapes[name]) for name in self.engine.inputs}
            if self.engine.stem == 'encoder':
                pixels = read['pixels']
                out = {'latents': pixels.mean(axis=(1, 2, 3))[:, None]
                       + np.arange(self.shapes['latents'][1], dtype=np.float32)}
            else:
                k = read['history_latents'].shape[0]
                out = {'costs': (read['candidates'] ** 2).sum(axis=(1, 2)) + (read['goal'] ** 2).sum() + k}
            for name, value in out.items():
                data = value.astype(np.float32).tobytes()
                cuda.memory[self.addresses[name]][:len(data)] = data
            return True

    class Engine:
        def __init__(self, spec: dict) -> None:
            self.stem = spec['stem']
            self.inputs = list(spec['inputs'])
            self.tensors = {**spec['inputs'], **spec['outputs']}
            self.names = [*spec['inputs'], *spec['outputs']]
            self.num_io_tensors = len(self.names)

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_mode(self, name: str) -> str:
            return 'INPUT' if name in self.inputs else 'OUTPUT'

        def get_tensor_dtype(self, name: str) -> str:
            return 'float32'

        def get_tensor_shape(self, name: str) -> tuple:
            return tuple(self.tensors[name])

        def create_execution_context(self):
            return Context(self)

    trt.ILogger, trt.Runtime = ILogger, Runtime
    return trt


def engine_bytes(stem: str, info: dict) -> bytes:
    """The fake serialised engine of an export's graph (its manifest entry ``info``); the
    encoder's dynamic batch ('batch') becomes -1 as in a real engine."""
    def dims(shape):
        return [-1 if d == 'batch' else d for d in shape]
    return json.dumps({'stem': stem, 'inputs': {k: dims(v) for k, v in info['inputs'].items()},
                       'outputs': {k: dims(v) for k, v in info['outputs'].items()}}).encode()
