"""A stand-in ``tensorrt`` module and CUDA API for tests, as strict as upstream's published support.

:func:`fake_tensorrt` returns a module with the parts of the TensorRT Python API eo-edge uses.
Its ONNX parser rejects what :mod:`trt_reference` says that release rejects: onnx-tensorrt's own
``docs/operators.md`` for the release (vendored under ``tests/data/onnx-tensorrt/``, see its
``SOURCES.md``; the newest page not newer than the fake's ``version``) plus the Q/DQ rules of the
TensorRT documentation, written independently of eo-edge's rule table (:mod:`eo_edge.trt_rules`,
which the fake is used to test, and which ``tests/test_trt_reference.py`` checks row by row against
the same pages). A DLA build with a dynamic profile fails (DLA restrictions); ``set_timing_cache``
can return False; an engine computes what its source ONNX computes (ONNX Runtime on the CPU), so
accuracy measured through it is real. :class:`FakeCuda` is a numpy "device". :func:`install`
puts both in place for a whole process (used by ``tests/fake_trt_cli.py``).
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np

import trt_reference
from eo_edge.backends.cuda_mem import CudaApi
from eo_edge.backends.trt_inspect import inspect_onnx


class _Enum:
    def __init__(self, **members: int):
        for k, v in members.items():
            setattr(self, k, v)


def fake_tensorrt(version: str = "10.3.0", *, fail_build: bool = False, dla_cores: int = 2,
                  timing_cache_ok: bool = True) -> types.ModuleType:
    """A stand-in ``tensorrt`` module: its parser rejects every file that onnx-tensorrt's
    ``docs/operators.md`` for that release and the cited TensorRT documentation reject
    (:func:`trt_reference.violations_for_file`; not eo-edge's rule table), a DLA build with a
    dynamic profile fails (DLA restrictions), and ``set_timing_cache`` returns ``timing_cache_ok``."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []  # (what, args) in call order
    rec = trt.calls.append

    class ILogger:
        Severity = _Enum(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        def __init__(self) -> None:
            pass

    trt.ILogger = ILogger
    flags = {"EXPLICIT_BATCH": 0}
    if int(version.split(".")[0]) >= 10:
        flags["STRONGLY_TYPED"] = 1
    trt.NetworkDefinitionCreationFlag = _Enum(**flags)
    trt.MemoryPoolType = _Enum(WORKSPACE=0)
    trt.BuilderFlag = _Enum(FP16=0, INT8=1, GPU_FALLBACK=2, TF32=3)
    trt.DeviceType = _Enum(GPU=0, DLA=1)
    trt.TensorIOMode = _Enum(NONE=0, INPUT=1, OUTPUT=2)
    trt.nptype = lambda dt: np.dtype(dt)

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...]):
            self.name, self.shape = name, shape

    class Network:
        def __init__(self, flags: int):
            self.flags, self.inputs = flags, []

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> Tensor:
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger):
            self.network, self.errors = network, []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            rec(("parse", path))
            # upstream's published rules for this release, not eo_edge.trt_rules (issue 30)
            self.errors = [v.line() for v in trt_reference.violations_for_file(path, version)]
            if self.errors:
                return False
            self.network.onnx = path
            for name, dims in inspect_onnx(path)["inputs"].items():
                self.network.inputs.append(Tensor(name, tuple(dims)))
            return True

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = data

        def serialize(self) -> bytes:
            return self.data + b"+tuned"

    class Config:
        def __init__(self) -> None:
            self.flags, self.default_device_type, self.DLA_core, self.cache = {trt.BuilderFlag.TF32}, 0, -1, None
            self.profiles = []

        def clear_flag(self, flag: int) -> None:
            self.flags.discard(flag)

        def set_memory_pool_limit(self, pool: int, size: int) -> None:
            rec(("workspace", size))

        def set_flag(self, flag: int) -> None:
            self.flags.add(flag)

        def add_optimization_profile(self, profile: "Profile") -> None:
            self.profiles.append(profile.shapes)
            rec(("profile", profile.shapes))

        def create_timing_cache(self, data: bytes) -> TimingCache:
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            rec(("timing_cache", cache.data, ignore_mismatch))
            return timing_cache_ok or cache.data == b""

        def get_timing_cache(self) -> TimingCache:
            return self.cache

    class Profile:
        def set_shape(self, name: str, mn, opt, mx) -> None:
            self.shapes = (name, mn, opt, mx)

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger: ILogger):
            self.logger = logger

        def create_network(self, flags: int) -> Network:
            rec(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            trt.config = Config()
            return trt.config

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config):
            if fail_build:
                self.logger.log(ILogger.Severity.ERROR, "Network validation failed.\nmore detail")
                return None
            if config.default_device_type == trt.DeviceType.DLA and any(p[1] != p[3] for p in config.profiles):
                self.logger.log(ILogger.Severity.ERROR, "DLA does not support dynamic shapes (profile min != max)")
                return None
            shape = network.inputs[0].shape
            max_batch = max(p[3][0] for p in config.profiles) if config.profiles else shape[0]
            plan = {"input": network.inputs[0].name, "chw": list(shape[1:]), "onnx": network.onnx,
                    "max_batch": max_batch, "flags": sorted(config.flags), "dla": config.default_device_type}
            return memoryview(json.dumps(plan).encode())

    class Context:
        def __init__(self, engine: "Engine"):
            self.engine, self.addr, self.shape = engine, {}, None

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            self.shape = tuple(shape)
            return 1 <= shape[0] <= self.engine.plan["max_batch"]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return (self.shape[0], self.engine.classes) if name == "logits" else self.shape

        def set_tensor_address(self, name: str, ptr: int) -> None:
            self.addr[name] = ptr

        def execute_async_v3(self, stream: int) -> bool:
            mem = trt.cuda.mem
            n = int(np.prod(self.shape))
            x = mem[self.addr["input"]][: n * 4].view(np.float32).reshape(self.shape)
            y = self.engine.session.run(None, {"input": x})[0].astype(np.float32)
            mem[self.addr["logits"]][: y.nbytes] = y.view(np.uint8).ravel()
            trt.enqueued.append((stream, self.shape[0]))
            return True

    class Engine:
        num_io_tensors = 2
        device_memory_size = 1 << 20  # bytes of activation memory the engine asks for

        def __init__(self, plan: dict):
            import onnxruntime as ort

            self.plan = plan
            # the engine computes what the ONNX it was parsed from computes (ONNX Runtime, CPU)
            self.session = ort.InferenceSession(plan["onnx"], providers=["CPUExecutionProvider"])
            self.classes = int(self.session.get_outputs()[0].shape[-1])

        def get_tensor_name(self, i: int) -> str:
            return ["input", "logits"][i]

        def get_tensor_mode(self, name: str) -> int:
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str):
            return np.float32

        def create_execution_context(self) -> Context:
            return Context(self)

    class Runtime:
        def __init__(self, logger: ILogger):
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            rec(("deserialize", len(data)))
            try:
                return Engine(json.loads(data))
            except ValueError:
                return None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    trt.enqueued = []
    return trt


class FakeCuda(CudaApi):
    """numpy 'device': addresses index byte arrays; events tick 1 ms per record."""

    binding = "fake"

    def __init__(self, name: str = "Orin", cc: str = "8.7"):
        self.name, self.cc, self.mem, self.next, self.tick, self.closed = name, cc, {}, 0x1000, 0.0, False

    def device_info(self):
        return self.name, self.cc

    def stream_handle(self) -> int:
        return 0xBEEF

    def pinned(self, nbytes):
        return np.zeros(nbytes, np.uint8)

    def device(self, nbytes):
        self.next += 0x1000
        self.mem[self.next] = np.zeros(nbytes, np.uint8)
        return self.next

    def htod_async(self, dst, src):
        self.mem[dst][: src.nbytes] = src

    def dtoh_async(self, dst, src):
        dst[:] = self.mem[src][: dst.nbytes]

    def event(self):
        return types.SimpleNamespace(t=None)

    def record(self, event):
        self.tick += 1.0
        event.t = self.tick

    def elapsed_ms(self, start, end):
        return end.t - start.t

    def synchronize(self):
        pass

    def close(self):
        self.closed = True


def install(version: str = "10.3.0", **kw) -> types.ModuleType:
    """Make ``import tensorrt`` return the fake and CUDA the numpy device, for this process."""
    from eo_edge.backends import cuda_mem

    trt = fake_tensorrt(version, **kw)
    sys.modules["tensorrt"] = trt

    def opener(index: int = 0) -> FakeCuda:
        trt.cuda = FakeCuda()
        return trt.cuda

    cuda_mem.open_cuda = opener
    return trt
