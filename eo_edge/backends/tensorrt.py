"""TensorRT backend: ONNX -> serialized engine (+ JSON sidecar) -> :class:`TensorRTRunner`.

Follows the NVIDIA TensorRT Developer Guide (section names as in the TensorRT 10 guide;
the TensorRT 8.5/8.6 guide has the same sections under "The Python API"):

* "The Python API > The Build Phase > Creating a Network Definition / Importing a Model
  Using the ONNX Parser / Building an Engine";
* precision: TensorRT >= 10 builds a *strongly typed* network ("Advanced > Strongly
  Typed Networks"): the types come from the ONNX itself - an FP16 ONNX, or an
  explicitly quantized QDQ ONNX ("Working with Quantized Types > Explicit Versus
  Implicit Quantization", "Q/DQ Layer-Placement Recommendations"). TensorRT 8.x has no
  strongly typed mode: an explicit-batch network plus the ``FP16`` / ``INT8`` builder
  flags over the same QDQ graph;
* "Working with Dynamic Shapes > Optimization Profiles" for the ``input`` (NCHW) batch
  range; "Optimizing Builder Performance > Timing Cache"; "Working with DLA > Running on
  DLA During TensorRT Inference" (``default_device_type``, ``DLA_core``,
  ``GPU_FALLBACK``);
* running the engine: see :mod:`eo_edge.backends.trt_runner`.

``tensorrt``, ``pycuda`` and ``cuda`` are imported lazily inside functions, so this
module imports on machines without them; there ``build``/``load`` raise
:class:`~eo_edge.errors.BackendUnavailable` with one line.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..artifact.forms import engine_path, sidecar_path
from ..artifact.onnx_meta import INPUT_NAME, decode_metadata
from ..errors import BackendUnavailable, EOEdgeError
from ..fileio import check_out_dir, sha256_file, write_bytes, write_json
from .base import Backend
from .trt_inspect import check_batches, check_precision, inspect_onnx
from .trt_runtime import _first_error, import_tensorrt, process_logger, trt_major
from .trt_sidecar import SIDECAR_FORMAT, check_portable, jetpack_major, load_sidecar, read_board_model, read_l4t_release

_log = logging.getLogger("eo_edge.tensorrt")



# -- the backend ------------------------------------------------------------------------


class TensorRTBackend(Backend):
    """Build and run TensorRT engines (Jetson boards; any NVIDIA GPU with TensorRT)."""

    name = "tensorrt"

    def available(self) -> tuple[bool, str]:
        """``(True, "tensorrt 10.3.0")`` or ``(False, one-line reason)``; never raises."""
        try:
            trt = import_tensorrt()
        except BackendUnavailable as e:
            return False, str(e)
        return True, f"tensorrt {trt.__version__}"

    def versions(self) -> dict[str, str]:
        """``{"tensorrt": ..., "l4t": ...}`` for the benchmark host record (empty if absent)."""
        out: dict[str, str] = {}
        try:
            out["tensorrt"] = str(import_tensorrt().__version__)
        except BackendUnavailable:
            return out
        l4t = read_l4t_release()
        if l4t:
            out["l4t"] = l4t
        return out

    def build(
        self,
        onnx_path: Path,
        out_path: Path,
        *,
        precision: str = "fp32",
        workspace_mb: int = 1024,
        timing_cache: str | Path | None = None,
        dla_core: int | None = None,
        min_batch: int = 1,
        opt_batch: int = 1,
        max_batch: int = 32,
        **options: Any,
    ) -> dict[str, Any]:
        """Build a serialized engine from a precision-carrying ONNX file.

        Writes ``out_path`` (the engine) and ``<out_path>.json`` (the sidecar: TensorRT
        version, GPU name, compute capability, board model, L4T release, precision, source ONNX
        sha256, engine sha256, optimization profile, and every ONNX ``metadata_props``
        entry), both atomically. With ``timing_cache`` the cache is loaded if the file
        exists and saved back after the build.

        Args:
            onnx_path: FP32, FP16, or QDQ-INT8 ONNX with an NCHW input named ``input``.
            out_path: engine file to write.
            precision: ``"fp32"``, ``"fp16"`` or ``"int8"``; must match the ONNX.
            workspace_mb: builder workspace memory pool limit in MiB.
            timing_cache: timing-cache file path, or ``None``.
            dla_core: DLA core index (Xavier/Orin), GPU fallback enabled; ``None`` = GPU.
            min_batch, opt_batch, max_batch: optimization profile batch range (ignored, with
                a warning, for an ONNX exported with a fixed batch).

        Returns:
            The sidecar dict plus ``"build_seconds"`` and ``"engine_path"``.

        Raises:
            BackendUnavailable: TensorRT or a CUDA binding is not installed (one line).
            EOEdgeError: bad option, unreadable ONNX, precision mismatch, no input named
                ``input``, no such DLA core, or the TensorRT build failed (one line).
        """
        if options:
            raise EOEdgeError(f"unknown TensorRT build option(s): {', '.join(sorted(options))}")
        trt = import_tensorrt()
        if workspace_mb <= 0:
            raise EOEdgeError(f"workspace_mb must be positive, got {workspace_mb}")
        check_batches(min_batch, opt_batch, max_batch)
        onnx_path, out_path = Path(onnx_path), check_out_dir(out_path)
        info = inspect_onnx(onnx_path)
        check_precision(precision, info, onnx_path.name)
        if dla_core is not None and precision == "fp32":
            raise EOEdgeError("DLA runs only FP16 or INT8 layers; build an fp16 or int8 engine for --dla-core")
        # the rule table for this TensorRT release, before any build work (eo_edge/trt_rules)
        from ..trt_rules.check import preflight

        preflight(onnx_path, str(trt.__version__), dla=dla_core is not None, skip=("dla-static",))
        from .cuda_mem import open_cuda

        cuda = open_cuda()
        try:
            gpu_name, cc = cuda.device_info()
        finally:
            cuda.close()

        t0 = time.perf_counter()
        logger = process_logger(trt)
        logger.errors.clear()
        builder = trt.Builder(logger)
        network, strongly_typed = self._create_network(trt, builder)
        # "Importing a Model Using the ONNX Parser"
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            first = (errs or ["unknown error"])[0].splitlines()[0]
            raise EOEdgeError(f"TensorRT cannot parse {onnx_path.name}: {first}")
        if dla_core is not None:  # DLA: no dynamic dimensions, so min = opt = max (DLA restrictions)
            min_batch = max_batch = opt_batch
        shape, profile = self._input_shape(trt, network, min_batch, opt_batch, max_batch)

        config = builder.create_builder_config()
        # "Building an Engine": the workspace memory pool (TensorRT >= 8.4 API)
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
        else:  # TensorRT < 8.4
            config.max_workspace_size = int(workspace_mb) << 20
        if not strongly_typed:
            # TensorRT 8.x "Explicit Quantization": INT8 flag over the QDQ graph; FP16 flag
            # lets TensorRT pick FP16 kernels for an FP16 ONNX (weakly typed).
            # INT8 also enables FP16, so the layers between Q/DQ pairs may run in FP16 (trtexec
            # --int8 --fp16; "Explicit Quantization": TensorRT 8 picks per layer from the flags).
            if precision == "fp16":
                config.set_flag(trt.BuilderFlag.FP16)
            elif precision == "int8":
                config.set_flag(trt.BuilderFlag.INT8)
                config.set_flag(trt.BuilderFlag.FP16)
        if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            # TensorRT enables TF32 by default ("Reduced Precision > TF32"; trtexec --noTF32):
            # an "fp32" engine is true FP32
            config.clear_flag(trt.BuilderFlag.TF32)
        if profile is not None:
            # "Optimization Profiles": kMIN / kOPT / kMAX shapes of the dynamic input
            opt = builder.create_optimization_profile()
            opt.set_shape(INPUT_NAME, *profile)
            config.add_optimization_profile(opt)
        cache = self._load_timing_cache(config, timing_cache)
        if dla_core is not None:
            self._use_dla(trt, builder, config, dla_core)

        # "Building an Engine": build_serialized_network returns IHostMemory or None
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            reason = _first_error(logger, "see the log above")
            raise EOEdgeError(f"TensorRT could not build an engine from {onnx_path.name}: {reason}")
        write_bytes(out_path, bytes(memoryview(serialized)))
        if timing_cache is not None and cache is not None:
            # "Timing Cache": serialize the (updated) cache for the next build
            write_bytes(Path(timing_cache), bytes(memoryview(config.get_timing_cache().serialize())))
        seconds = time.perf_counter() - t0

        l4t = read_l4t_release()
        batch = [profile[0][0], profile[1][0], profile[2][0]] if profile else [shape[0]] * 3
        sidecar = {
            "format": SIDECAR_FORMAT,
            "tensorrt_version": str(trt.__version__),
            "gpu_name": gpu_name,
            "compute_capability": cc,
            "board_model": read_board_model(),
            "l4t_release": l4t,
            "jetpack_major": jetpack_major(l4t),
            "precision": precision,
            "strongly_typed": strongly_typed,
            "dla_core": dla_core,
            "workspace_mb": int(workspace_mb),
            "input": {
                "name": INPUT_NAME,
                "chw": list(shape[1:]),
                "min_batch": batch[0],
                "opt_batch": batch[1],
                "max_batch": batch[2],
            },
            "source_onnx": onnx_path.name,
            "source_onnx_sha256": sha256_file(onnx_path),
            "engine_sha256": sha256_file(out_path),
            "metadata": dict(info["metadata"]),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_json(sidecar_path(out_path), sidecar)
        return {**sidecar, "engine_path": str(out_path), "build_seconds": round(seconds, 3)}

    def cached_engine(self, onnx_path: Path, engine_dir: Path, *, precision: str, opt_batch: int = 64,
                      dla_core: int | None = None, log=lambda m: None) -> Path:
        """The engine for ``onnx_path`` in ``engine_dir`` (e.g. ``EO_EDGE_HOME/engines``, a mounted
        volume in the container), built only when no valid one is there.

        An engine is reused only when its sidecar names the same source ONNX sha256 and this
        machine's TensorRT version, GPU and compute capability (:func:`check_portable`); otherwise
        it is rebuilt with the profile min 1, opt = max = ``opt_batch`` (DLA: static, min = opt =
        max), so throughput at that batch runs in one call on the kernels tuned for it.

        Returns:
            Path of the engine (``<onnx stem>.<sha256[:12]>.engine``).

        Raises:
            BackendUnavailable, EOEdgeError: as :meth:`build`.
        """
        trt = import_tensorrt()
        onnx_path, engine_dir = Path(onnx_path), Path(engine_dir)
        engine_dir.mkdir(parents=True, exist_ok=True)
        sha = sha256_file(onnx_path)
        eng = engine_path(onnx_path, engine_dir, sha)
        if eng.is_file() and sidecar_path(eng).is_file():
            side = load_sidecar(eng)
            from .cuda_mem import open_cuda

            cuda = open_cuda()
            try:
                gpu_name, cc = cuda.device_info()
            finally:
                cuda.close()
            here = {"tensorrt_version": str(trt.__version__), "gpu_name": gpu_name, "compute_capability": cc,
                    "board_model": read_board_model()}
            try:
                if side.get("source_onnx_sha256") != sha or side.get("engine_sha256") != sha256_file(eng):
                    raise EOEdgeError("source ONNX or engine changed")
                check_portable(eng, side, here)
                return eng
            except EOEdgeError as e:
                log(f"rebuilding {eng.name}: {e}")
        log(f"building TensorRT engine {eng.name} ({precision})")
        self.build(onnx_path, eng, precision=precision, dla_core=dla_core, min_batch=1, opt_batch=opt_batch,
                   max_batch=opt_batch)
        return eng

    def load(self, path: Path, threads: int | None = None) -> "TensorRTRunner":
        """Open an engine made by :meth:`build` (``threads`` is ignored: the GPU runs it).

        Developer Guide, "The Python API > Deserializing a Plan". Before deserializing,
        the sidecar is checked against this machine: an engine built for another
        TensorRT version, GPU model, compute capability or (when both are known) board
        model is refused.

        Raises:
            BackendUnavailable: TensorRT or a CUDA binding is not installed (one line).
            EOEdgeError: missing file or sidecar, engine/sidecar mismatch, engine built for
                another machine, or deserialization failed (one line).
        """
        path = Path(path)
        trt = import_tensorrt()
        if path.suffix.lower() == ".onnx":
            raise EOEdgeError(
                f"{path.name} is an ONNX file; the tensorrt backend runs engines built by "
                "`eo-edge compile --backend tensorrt`"
            )
        if not path.is_file():
            raise EOEdgeError(f"TensorRT engine not found: {path}")
        side = load_sidecar(path)
        if side.get("engine_sha256") != sha256_file(path):
            raise EOEdgeError(
                f"{sidecar_path(path).name} does not describe {path.name} (sha256 differs); rebuild the engine"
            )
        from .cuda_mem import open_cuda
        from .trt_runner import TensorRTRunner

        cuda = open_cuda()
        try:
            gpu_name, cc = cuda.device_info()
            here = {
                "tensorrt_version": str(trt.__version__),
                "gpu_name": gpu_name,
                "compute_capability": cc,
                "board_model": read_board_model(),
            }
            check_portable(path, side, here)
            logger = process_logger(trt)
            logger.errors.clear()
            runtime = trt.Runtime(logger)
            if side.get("dla_core") is not None:  # "Working with DLA": pick the core before deserializing
                runtime.DLA_core = int(side["dla_core"])
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                reason = _first_error(logger, "corrupt engine file")
                raise EOEdgeError(f"TensorRT could not deserialize {path.name}: {reason}")
            metadata = decode_metadata(side.get("metadata", {}))
            metadata.setdefault("precision", side.get("precision"))
            return TensorRTRunner(
                path, metadata, trt=trt, runtime=runtime, engine=engine, cuda=cuda, sidecar=side, logger=logger
            )
        except BaseException:
            cuda.close()
            raise

    # -- build helpers ------------------------------------------------------------------

    @staticmethod
    def _create_network(trt: Any, builder: Any) -> tuple[Any, bool]:
        """TensorRT >= 10: strongly typed ("Strongly Typed Networks"); 8.x: explicit batch
        ("Creating a Network Definition": ``EXPLICIT_BATCH`` is required for ONNX in 8.x)."""
        flags = trt.NetworkDefinitionCreationFlag
        if trt_major(trt.__version__) >= 10 and hasattr(flags, "STRONGLY_TYPED"):
            return builder.create_network(1 << int(flags.STRONGLY_TYPED)), True
        return builder.create_network(1 << int(flags.EXPLICIT_BATCH)), False

    @staticmethod
    def _input_shape(
        trt: Any, network: Any, min_batch: int, opt_batch: int, max_batch: int
    ) -> tuple[tuple[int, int, int, int], tuple[tuple[int, ...], ...] | None]:
        """Find the NCHW ``input`` tensor ("Working with Dynamic Shapes": -1 marks the
        dynamic batch); return its shape and the (min, opt, max) profile shapes, or
        ``None`` when the batch is static."""
        names = [network.get_input(i).name for i in range(network.num_inputs)]
        if INPUT_NAME not in names:
            raise EOEdgeError(f"the ONNX has no input named '{INPUT_NAME}' (inputs: {', '.join(names) or 'none'})")
        tensor = network.get_input(names.index(INPUT_NAME))
        shape = tuple(int(d) for d in tensor.shape)
        if len(shape) != 4 or any(d <= 0 for d in shape[1:]):
            raise EOEdgeError(f"input '{INPUT_NAME}' must be NCHW with fixed C, H, W; got {list(shape)}")
        _n, c, h, w = shape
        if shape[0] > 0:  # static batch (export --static-batch): no profile; the runner chunks/pads
            if (min_batch, opt_batch, max_batch) != (shape[0],) * 3:
                _log.warning(
                    "the ONNX input has a fixed batch of %d; building for batch %d (min/opt/max ignored)",
                    shape[0],
                    shape[0],
                )
            return shape, None  # type: ignore[return-value]
        profile = ((min_batch, c, h, w), (opt_batch, c, h, w), (max_batch, c, h, w))
        return shape, profile  # type: ignore[return-value]

    @staticmethod
    def _load_timing_cache(config: Any, timing_cache: str | Path | None) -> Any:
        """"Timing Cache": start from the saved cache if any (an empty one otherwise)."""
        if timing_cache is None:
            return None
        path = Path(timing_cache)
        data = path.read_bytes() if path.is_file() else b""
        cache = config.create_timing_cache(data)
        # ignore_mismatch=False: a cache from another device/version is refused (returns False)
        if not config.set_timing_cache(cache, False):
            _log.warning("timing cache %s does not match this device/TensorRT; building with a fresh one", path)
            cache = config.create_timing_cache(b"")
            if not config.set_timing_cache(cache, False):
                raise EOEdgeError("TensorRT refused an empty timing cache")
        return cache

    @staticmethod
    def _use_dla(trt: Any, builder: Any, config: Any, dla_core: int) -> None:
        """"Working with DLA": default device DLA, core index, GPU fallback for layers DLA
        cannot run."""
        cores = int(getattr(builder, "num_DLA_cores", 0))
        if not 0 <= dla_core < cores:
            raise EOEdgeError(f"no DLA core {dla_core} on this device (it has {cores})")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


from .trt_runner import TensorRTRunner  # noqa: E402  (re-export; imports no CUDA/TensorRT)

__all__ = ["TensorRTBackend", "TensorRTRunner"]
