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

import threading
import time
from typing import Any

from ..errors import BackendUnavailable
from .base import PowerResult, PowerSampler, make_result, mean_or_none

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


class NvmlSampler(PowerSampler):
    """GPU board power from NVML.

    Args:
        index: GPU index as NVML numbers them (0 = first GPU).
        interval_ms: polling interval of ``nvmlDeviceGetPowerUsage`` in ms.

    Raises:
        BackendUnavailable: pynvml missing, no NVIDIA driver, no GPU ``index``, or the
            GPU does not report power (one-line message).
    """

    name = "nvml"

    def __init__(self, index: int = 0, interval_ms: int = 100):
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self._nvml = _import_pynvml()
        self.index = index
        self.interval_ms = int(interval_ms)
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
        self._lock = threading.Lock()
        self._polls: list[tuple[float, float]] = []
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle_mW: float | None = None
        self._t0: float | None = None
        self._e0: float | None = None

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

    def idle_baseline(self, seconds: float) -> float | None:
        """Mean GPU power (mW) over the next ``seconds``; stored as the idle baseline."""
        self._ensure_polling()
        t0, e0 = time.monotonic(), self._read_energy_mJ()
        time.sleep(max(0.0, seconds))
        t1, e1 = time.monotonic(), self._read_energy_mJ()
        self._idle_mW = self._mean(t0, t1, e0, e1)
        return self._idle_mW

    def start(self) -> None:
        """Open the timed window."""
        self._ensure_polling()
        self._t0, self._e0 = time.monotonic(), self._read_energy_mJ()

    def stop(self) -> PowerResult:
        """Close the window and return its :class:`PowerResult` (mW, s).

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._t0 is None:
            raise RuntimeError("NvmlSampler.stop() called before start()")
        t1, e1 = time.monotonic(), self._read_energy_mJ()
        t0, e0, self._t0, self._e0 = self._t0, self._e0, None, None
        self._stop_polling()
        polls = self._polls_in(t0, t1)
        mean = self._mean(t0, t1, e0, e1)
        result = make_result(self.name, polls, t1 - t0, self._idle_mW, mean_mW=mean, scope=_SCOPE)
        self._idle_mW = None
        return result

    def close(self) -> None:
        """Stop polling and shut NVML down (safe to call twice)."""
        if getattr(self, "_thread", None) is not None:
            self._stop_polling()
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    # -- internals ---------------------------------------------------------------------

    def _read_energy_mJ(self) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:
            return None

    def _mean(self, t0: float, t1: float, e0: float | None, e1: float | None) -> float | None:
        if self._energy_supported and e0 is not None and e1 is not None and t1 > t0:
            return (e1 - e0) / (t1 - t0)  # mJ / s = mW
        return mean_or_none(self._polls_in(t0, t1))

    def _polls_in(self, t0: float, t1: float) -> list[float]:
        with self._lock:
            return [p for t, p in self._polls if t0 <= t <= t1]

    def _ensure_polling(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            self._polls = []
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._poll, name="nvml-poller", daemon=True)
        self._thread.start()

    def _stop_polling(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _poll(self) -> None:
        period = self.interval_ms / 1000.0
        while not self._stop_event.is_set():
            try:
                mw = float(self._nvml.nvmlDeviceGetPowerUsage(self._handle))
            except Exception:
                mw = None
            if mw is not None:
                with self._lock:
                    self._polls.append((time.monotonic(), mw))
            self._stop_event.wait(period)
