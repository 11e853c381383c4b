"""NVML power source for NVIDIA desktop / datacenter GPUs (package nvidia-ml-py, module ``pynvml``).

Reads, for one GPU (NVML API Reference Guide, "Device Queries"):

* ``nvmlDeviceGetTotalEnergyConsumption`` - energy since driver load in mJ (Volta and
  newer). When supported, the window's mean power is energy difference / time, exact
  whatever the polling rate.
* ``nvmlDeviceGetPowerUsage`` - board power in mW, polled every ``interval_ms`` in a
  background thread; the mean of the polls is used when the energy counter is not
  supported, and the poll count is ``n_samples``.

Scope: the GPU board only (not CPU, not the host). On Jetson boards NVML initialises but
returns "Not Supported" for power, so :meth:`NvmlSampler.available` reports it unusable
and tegrastats is used instead. ``pynvml`` is imported lazily, only here.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import BackendUnavailable
from .base import EnergyCounterSampler, mean_or_none

_SCOPE = "GPU board power (NVML)"


def _import_pynvml() -> Any:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError as e:
        raise BackendUnavailable(
            "power source NVML unavailable: the 'pynvml' module is not installed (pip install nvidia-ml-py)"
        ) from e
    return pynvml


def _err_text(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


class NvmlSampler(EnergyCounterSampler):
    """GPU board power from NVML (idle baseline and window in mW, duration in s).

    Args:
        index: GPU index as NVML numbers them (0 = first GPU).
        interval_ms: polling interval of ``nvmlDeviceGetPowerUsage`` in ms.

    Raises:
        BackendUnavailable: pynvml missing, no NVIDIA driver, no GPU ``index``, or the
            GPU does not report power (one-line message).
    """

    name = "nvml"
    scope = _SCOPE
    _poll_on_start = True

    def __init__(self, index: int = 0, interval_ms: int = 100):
        super().__init__(interval_ms)
        self._nvml = _import_pynvml()
        self.index = index
        try:
            self._nvml.nvmlInit()
        except Exception as e:  # pynvml.NVMLError and driver-library load errors
            raise BackendUnavailable(f"power source NVML unavailable: {_err_text(e)}") from e
        self._initialised = True
        try:
            count = self._nvml.nvmlDeviceGetCount()
            if index >= count:
                raise BackendUnavailable(f"power source NVML unavailable: no GPU {index} (NVML sees {count})")
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml.nvmlDeviceGetPowerUsage(self._handle)
        except BackendUnavailable:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise BackendUnavailable(f"power source NVML unavailable: GPU {index} power: {_err_text(e)}") from e
        self._energy_supported = self._read_energy_mJ() is not None
        self._polls: list[float] = []  # mW, one per poll since polling began

    @classmethod
    def available(cls, index: int = 0) -> tuple[bool, str]:
        """``(True, "GPU name")`` if GPU ``index`` reports power through NVML, else
        ``(False, one-line reason)``."""
        try:
            sampler = cls(index=index)
        except BackendUnavailable as e:
            return False, str(e)
        try:
            name = sampler._nvml.nvmlDeviceGetName(sampler._handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            name = f"GPU {index}"
        finally:
            sampler.close()
        return True, name

    def close(self) -> None:
        """Stop polling and shut NVML down (safe to call twice)."""
        super().close()
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    # -- hooks (see EnergyCounterSampler) ---------------------------------------------

    def _read_energy_mJ(self) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:
            return None

    def _read_counter(self) -> tuple[float | None, int]:
        energy = self._read_energy_mJ() if self._energy_supported else None
        with self._lock:
            return energy, len(self._polls)

    def _polled_mean(self, n0: int, n1: int) -> float | None:
        with self._lock:
            return mean_or_none(self._polls[n0:n1])

    def _begin_polling(self) -> None:
        with self._lock:
            self._polls = []

    def _poll_once(self) -> None:
        try:
            mw = float(self._nvml.nvmlDeviceGetPowerUsage(self._handle))
        except Exception:
            return
        with self._lock:
            self._polls.append(mw)

    def _clock(self) -> Any:
        return time  # this module's, so that tests can replace it
