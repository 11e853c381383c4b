"""RAPL (fake powercap sysfs), NVML (fake / missing pynvml) and source selection."""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

import pytest

from eo_edge.errors import BackendUnavailable
from eo_edge.power import best_sampler, describe_sources
from eo_edge.power import nvml as nvml_mod
from eo_edge.power import rapl as rapl_mod
from eo_edge.power.nvml import NvmlSampler
from eo_edge.power.rapl import RaplSampler, energy_delta_uj, find_zones

MAX_RANGE = 262_143_328_850  # a real max_energy_range_uj value (Intel client CPUs)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic, so a poll never reads a half-written counter


def _zone(root: Path, dirname: str, name: str, energy_uj: int, max_range: int = MAX_RANGE) -> Path:
    d = root / dirname
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    _write(d / "energy_uj", f"{energy_uj}\n")
    return d


@pytest.fixture
def powercap(tmp_path):
    """Two packages, a psys zone, sub-zones and an mmio zone, as on a two-socket box."""
    root = tmp_path / "powercap"
    pkg0 = _zone(root, "intel-rapl:0", "package-0", MAX_RANGE - 20_000_000)  # wraps in the window
    pkg1 = _zone(root, "intel-rapl:1", "package-1", 5_000)
    _zone(root, "intel-rapl:2", "psys", 0)  # whole platform: would double count
    _zone(root, "intel-rapl:0:0", "core", 0)  # part of package-0
    _zone(root, "intel-rapl-mmio:0", "package-0", 0)  # duplicate of package-0
    return root, {pkg0: 0.0, pkg1: 0.0}


class FakeClock:
    """Replaces ``time`` in a power module: ``sleep`` advances the clock and the counters."""

    def __init__(self, zones: dict[Path, float]):
        self.t = 1000.0
        self.power_mW = zones  # zone dir -> mW drawn while sleeping

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        for d, mw in self.power_mW.items():
            now = int((d / "energy_uj").read_text())
            _write(d / "energy_uj", f"{(now + int(mw * seconds * 1000)) % MAX_RANGE}\n")


# -- RAPL -----------------------------------------------------------------------------------


def test_energy_delta_handles_wraparound():
    assert energy_delta_uj(100, 350, 1000) == 250
    assert energy_delta_uj(900, 100, 1000) == 200  # wrapped once
    assert energy_delta_uj(5, 5, 1000) == 0


def test_find_zones_packages_only(powercap):
    root, _ = powercap
    zones = find_zones(root)
    assert [(n, d.name, r) for n, d, r in zones] == [
        ("package-0", "intel-rapl:0", MAX_RANGE),
        ("package-1", "intel-rapl:1", MAX_RANGE),
    ]
    assert RaplSampler.available(root) == (True, "package-0, package-1")


def test_rapl_idle_window_energy_and_wrap(powercap, monkeypatch):
    root, zones = powercap
    clock = FakeClock(zones)
    monkeypatch.setattr(rapl_mod, "time", clock)
    pkg0, pkg1 = list(zones)
    sampler = RaplSampler(root=root, interval_ms=60_000)  # the poll thread stays asleep
    try:
        clock.power_mW.update({pkg0: 3000.0, pkg1: 2000.0})
        assert sampler.idle_baseline(4.0) == pytest.approx(5000.0)
        clock.power_mW.update({pkg0: 9000.0, pkg1: 6000.0})
        sampler.start()
        clock.sleep(2.0)  # the timed window; package-0's counter wraps in here
        result = sampler.stop()
    finally:
        sampler.close()
    assert int((pkg0 / "energy_uj").read_text()) < 1_000_000_000  # it did wrap
    assert result.source == "rapl" and result.scope == "CPU package (package-0+package-1)"
    assert result.duration_s == pytest.approx(2.0)
    assert result.mean_mW == pytest.approx(15000.0)
    assert result.idle_mW == pytest.approx(5000.0) and result.above_idle_mW == pytest.approx(10000.0)
    assert result.energy_per_image_mJ(100) == pytest.approx(300.0)  # 15 W * 2 s / 100
    assert result.n_samples == 1


def test_rapl_unavailable(tmp_path, monkeypatch):
    ok, reason = RaplSampler.available(tmp_path / "missing")
    assert not ok and "cannot list" in reason
    (tmp_path / "empty").mkdir()
    ok, reason = RaplSampler.available(tmp_path / "empty")
    assert not ok and "no intel-rapl zone" in reason
    bad = _zone(tmp_path / "bad", "intel-rapl:0", "package-0", 0)
    (bad / "energy_uj").unlink()
    (bad / "energy_uj").mkdir()  # unreadable as a file even for root
    with pytest.raises(BackendUnavailable, match="RAPL unavailable: cannot read"):
        RaplSampler(root=tmp_path / "bad")

    def deny(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl_mod, "_read_int", deny)
    _zone(tmp_path / "root_only", "intel-rapl:0", "package-0", 0)
    ok, reason = RaplSampler.available(tmp_path / "root_only")
    assert not ok and "readable by root only" in reason and "\n" not in reason


# -- NVML -----------------------------------------------------------------------------------


class NVMLError(Exception):
    pass


def _fake_pynvml(power_mW: float, clock: FakeClock | None = None, *, energy=True, power_ok=True, count=1):
    """A stand-in ``pynvml`` module with the calls NvmlSampler makes."""
    m = types.ModuleType("pynvml")
    state = {"init": 0, "shutdown": 0}
    m.NVMLError = NVMLError
    m.nvmlInit = lambda: state.__setitem__("init", state["init"] + 1)
    m.nvmlShutdown = lambda: state.__setitem__("shutdown", state["shutdown"] + 1)
    m.nvmlDeviceGetCount = lambda: count
    m.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    m.nvmlDeviceGetName = lambda h: "NVIDIA Fake GPU"

    def power(h):
        if not power_ok:
            raise NVMLError("Not Supported")
        return int(power_mW)

    def total_energy(h):
        if not energy or clock is None:
            raise NVMLError("Not Supported")
        return int(clock.t * power_mW)  # mJ = mW * s

    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetTotalEnergyConsumption = total_energy
    m.state = state
    return m


def test_nvml_missing_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with pytest.raises(BackendUnavailable, match="pip install nvidia-ml-py"):
        NvmlSampler()
    ok, reason = NvmlSampler.available()
    assert not ok and reason.startswith("power source NVML unavailable") and "\n" not in reason


def test_nvml_jetson_style_not_supported(monkeypatch):
    fake = _fake_pynvml(0, power_ok=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    ok, reason = NvmlSampler.available()
    assert not ok and "Not Supported" in reason
    assert fake.state["shutdown"] == 1  # NVML released after the failed probe
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(1.0, count=0))
    assert "no GPU 0" in NvmlSampler.available()[1]


def test_nvml_energy_counter_window(monkeypatch):
    clock = FakeClock({})
    fake = _fake_pynvml(250_000.0, clock)  # 250 W
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(nvml_mod, "time", types.SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    assert NvmlSampler.available() == (True, "NVIDIA Fake GPU")
    with NvmlSampler(interval_ms=5) as sampler:
        assert sampler.idle_baseline(1.0) == pytest.approx(250_000.0)
        sampler.start()
        clock.sleep(3.0)
        result = sampler.stop()
    assert result.source == "nvml" and result.scope.startswith("GPU board power")
    assert result.mean_mW == pytest.approx(250_000.0) and result.duration_s == pytest.approx(3.0)
    assert result.above_idle_mW == pytest.approx(0.0)
    assert result.energy_per_image_mJ(1000) == pytest.approx(750.0)


def test_nvml_polled_power_without_energy_counter(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(80_000.0, energy=False))
    with NvmlSampler(interval_ms=10) as sampler:
        sampler.start()
        time.sleep(0.25)
        result = sampler.stop()
    assert result.mean_mW == 80_000.0 and result.n_samples >= 3 and result.idle_mW is None


# -- selection ------------------------------------------------------------------------------


def test_best_sampler_order(powercap, tmp_path, monkeypatch):
    root, _ = powercap
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no tegrastats
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(1000.0))
    s = best_sampler(rapl_root=str(root))
    assert isinstance(s, NvmlSampler)  # NVML before RAPL
    s.close()
    monkeypatch.setitem(sys.modules, "pynvml", None)
    s = best_sampler(rapl_root=str(root))
    assert isinstance(s, RaplSampler)
    s.close()
    assert best_sampler(rapl_root=str(tmp_path / "no-powercap")) is None
    rows = describe_sources(rapl_root=str(tmp_path / "no-powercap"))
    assert [r["source"] for r in rows] == ["tegrastats", "nvml", "rapl"]
    assert not any(r["available"] for r in rows)
    assert all("\n" not in r["detail"] for r in rows)


def test_power_protocol_settle_idle_window_and_warning():
    """measure_power follows the protocol's order (settle, idle baseline, window) and warns below
    the minimum sample count; the knobs are validated."""
    import numpy as np

    from eo_edge.errors import EOEdgeError
    from eo_edge.power.base import PowerSampler, make_result
    from eo_edge.power.protocol import PowerProtocol, measure_power

    events = []
    clock = {"t": 0.0}

    class Sampler(PowerSampler):
        name = "fake"

        @classmethod
        def available(cls):
            return True, "fake"

        def idle_baseline(self, seconds):
            events.append(("idle", seconds))
            self.idle = 1000.0
            return self.idle

        def start(self):
            events.append(("start", clock["t"]))

        def stop(self):
            events.append(("stop", clock["t"]))
            return make_result("fake", [3000.0] * 7, clock["t"], self.idle, scope="board")

    def infer(x):
        clock["t"] += 0.25  # each batch takes 0.25 s on the fake clock

    xb = np.zeros((8, 3, 4, 4), np.float32)
    rec = measure_power(Sampler(), infer, xb, PowerProtocol(idle_s=2, settle_s=1, window_s=1.0, min_samples=10),
                        sleep=lambda s: events.append(("settle", s)), clock=lambda: clock["t"])
    assert [e[0] for e in events] == ["settle", "idle", "start", "stop"]
    assert events[0] == ("settle", 1) and events[1] == ("idle", 2)
    assert rec["n_images"] == 32 and rec["n_samples"] == 7 and rec["scope"] == "board"  # 4 batches of 8 in 1 s
    assert rec["energy_per_image_mJ"] == 3000.0 * 1.0 / 32
    assert rec["energy_per_image_above_idle_mJ"] == 2000.0 * 1.0 / 32
    assert "only 7 power samples" in rec["warning"] and rec["protocol"]["min_samples"] == 10
    for bad in (PowerProtocol(window_s=0), PowerProtocol(idle_s=-1), PowerProtocol(settle_s=float("nan"))):
        with pytest.raises(EOEdgeError):
            bad.check()
