"""tegrastats parser (real lines from seven board families) and the sampler end to end.

Every line in REAL_LINES was printed by a real board and published; the comment above
it says where. They are copied verbatim (only split across string literals).
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from eo_edge.errors import BackendUnavailable
from eo_edge.power import best_sampler
from eo_edge.power.base import PowerResult
from eo_edge.power.tegrastats import TegrastatsSampler, parse_line, total_power_mw, total_power_scope

# Jetson TX1, L4T 28.1 (no rails, lowercase "cpu [..]@freq", "GR3D x%@f"):
# github.com/hordiales/jetson-tx1-dev, SCRIPTS.md
TX1_L4T28 = (
    "RAM 3468/3983MB (lfb 48x4MB) SWAP 873/8192MB (cached 295MB) cpu [17%,13%,29%,5%]@408 "
    "EMC 1%@408 APE 25 GR3D 3%@76"
)
# Jetson TX2, L4T 28.x (rails without unit, VDD_IN first):
# github.com/gustavz/realtime_object_detection issue #24
TX2_L4T28 = (
    "RAM 1685/7854MB (lfb 1044x4MB) SWAP 278/8192MB (cached 23MB) "
    "CPU [0%@1303,0%@345,0%@345,0%@1419,0%@1420,0%@1421] EMC_FREQ 0%@1866 GR3D_FREQ 0%@140 APE 150 "
    "MTS fg 1% bg 8% BCPU@41C MCPU@41C GPU@39C PLL@41C Tboard@37C Tdiode@37.25C PMIC@100C thermal@39.9C "
    "VDD_IN 1931/1931 VDD_CPU 231/231 VDD_GPU 154/154 VDD_SOC 385/385 VDD_WIFI 38/38 VDD_DDR 326/326"
)
# Jetson TX2, L4T 32.x (VDD_IN is the 4th rail): github.com/henrygd/beszel pull request #1631
TX2_L4T32 = (
    "RAM 3276/7859MB (lfb 5x4MB) SWAP 1626/12122MB (cached 181MB) "
    "CPU [44%@1421,49%@2031,67%@2034,17%@1420,25%@1419,8%@1420] EMC_FREQ 1%@1866 GR3D_FREQ 0%@114 APE 150 "
    "MTS fg 1% bg 1% PLL@42.5C MCPU@42.5C PMIC@50C Tboard@38C GPU@39.5C BCPU@42.5C thermal@41.3C "
    "Tdiode@39.25C VDD_SYS_GPU 182/182 VDD_SYS_SOC 730/730 VDD_4V0_WIFI 0/0 VDD_IN 5297/5297 "
    "VDD_SYS_CPU 1917/1917 VDD_SYS_DDR 1241/1241"
)
# TX2-family board (Denver+A57, 4 GB), JetPack 4.6, tegrastats run WITHOUT sudo: two cores
# "off", no rails at all: github.com/rbonghi/jetson_stats issue #187
TX2_NO_ROOT = (
    "RAM 1689/3825MB (lfb 339x4MB) SWAP 0/1913MB (cached 0MB) CPU [3%@345,off,off,0%@345,1%@345,1%@345] "
    "EMC_FREQ 0% GR3D_FREQ 0% PLL@50.5C MCPU@50.5C PMIC@50C GPU@50C BCPU@50.5C thermal@50.3C"
)
# Jetson Nano (POM_5V_* rails, IRAM field): github.com/rbonghi/jetson_stats, tests/tegrastats
# (the Jetson Nano example line of jetson-stats' tegrastats emulator)
NANO = (
    "RAM 1180/3965MB (lfb 1x2MB) SWAP 149/1024MB (cached 7MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [30%@1036,33%@1036,28%@1036,26%@1036] EMC_FREQ 10%@1600 GR3D_FREQ 0%@76 NVENC 716 NVDEC 716 APE 25 "
    "PLL@57C CPU@60.5C PMIC@100C GPU@59C AO@65C thermal@59.75C POM_5V_IN 4520/4680 POM_5V_GPU 0/0 "
    "POM_5V_CPU 1078/1205"
)
# Jetson AGX Xavier, JetPack 4.2 ("GPU 463/463" is a rail, "GPU@30.5C" a temperature; no
# input rail): github.com/martinkersner/gtop pull request #7
AGX_XAVIER = (
    "RAM 14700/15692MB (lfb 3x2MB) SWAP 898/8192MB (cached 23MB) "
    "CPU [0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190] EMC_FREQ 0% GR3D_FREQ 0% "
    "AO@30C GPU@30.5C Tboard@31C Tdiode@32C AUX@30.5C CPU@31.5C thermal@30.8C PMIC@100C "
    "GPU 463/463 CPU 618/618 SOC 2936/2936 CV 0/0 VDDRQ 309/309 SYS5V 3306/3306"
)
# Jetson Orin Nano, JetPack 6 (timestamp, mW units): github.com/henrygd/beszel,
# agent/gpu_test.go, TestParseJetsonData case "orin nano"
ORIN_NANO_IDLE = (
    "06-18-2025 11:25:24 RAM 3452/7620MB (lfb 25x4MB) SWAP 1518/16384MB (cached 174MB) "
    "CPU [1%@1420,2%@1420,0%@1420,2%@1420,2%@729,1%@729] GR3D_FREQ 0% cpu@50.031C soc2@49.031C soc0@50C "
    "gpu@49.031C tj@50.25C soc1@50.25C VDD_IN 4824mW/4824mW VDD_CPU_GPU_CV 518mW/518mW VDD_SOC 1475mW/1475mW"
)
# Orin Nano-class board under GPU load (GR3D_FREQ x%@[f], engines "off"): same file,
# case "more valid data"
ORIN_NANO_LOAD = (
    "11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) "
    "CPU [15%@729,11%@729,14%@729,13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] NVDEC off "
    "NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@53.968C soc2@52.437C soc0@50.75C gpu@53.343C "
    "tj@53.968C soc1@51.656C VDD_IN 12479mW/12479mW VDD_CPU_GPU_CV 4667mW/4667mW VDD_SOC 2817mW/2817mW"
)
# Jetson AGX Orin 64GB (two "NC" rails, offline -256C sensors, two GPC clocks, no input
# rail): github.com/GDWR/jetson_exporter issue #14
AGX_ORIN = (
    "04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) "
    "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] "
    "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C "
    "SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C "
    "VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW "
    "VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"
)
# Jetson AGX Thor, JetPack 7.2 (three values per rail: instant/average/max; no GR3D_FREQ):
# github.com/wendylabsinc/WendyOS pull request #1316 (TestParseTegrastatsJetPack7Thor)
THOR = (
    "07-02-2026 13:45:44 RAM 36529/125749MB (lfb 12x4MB) SWAP 11/4096MB (cached 9MB) "
    "CPU [2%@972,1%@972,0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,2%@972] "
    "cpu@60.406C tj@63.281C soc012@58.468C gpu@62.906C soc345@63.281C "
    "VDD_GPU 37528mW/37528mW/37528mW VDD_CPU_SOC_MSS 18961mW/18961mW/18961mW "
    "VIN_SYS_5V0 18331mW/18331mW/18331mW VIN 87426mW/43713mW/87426mW"
)


# -- parser: real lines -------------------------------------------------------------------


def test_tx1_l4t28_no_rails_shared_cpu_clock():
    s = parse_line(TX1_L4T28)
    assert s.timestamp is None
    assert (s.ram_used_mb, s.ram_total_mb) == (3468, 3983)
    assert (s.swap_used_mb, s.swap_total_mb, s.swap_cached_mb) == (873, 8192, 295)
    assert s.cpu == [(17, 408), (13, 408), (29, 408), (5, 408)]
    assert (s.gr3d_percent, s.gr3d_freq_mhz, s.emc_percent) == (3, 76, 1)
    assert s.rails == [] and s.temps == {}
    assert total_power_mw(s) is None and total_power_scope(s) is None


def test_tx2_l4t28_unitless_rails():
    s = parse_line(TX2_L4T28)
    assert s.rails == [
        ("VDD_IN", 1931, 1931),
        ("VDD_CPU", 231, 231),
        ("VDD_GPU", 154, 154),
        ("VDD_SOC", 385, 385),
        ("VDD_WIFI", 38, 38),
        ("VDD_DDR", 326, 326),
    ]
    assert s.cpu[0] == (0, 1303) and s.cpu[5] == (0, 1421)
    assert (s.gr3d_percent, s.gr3d_freq_mhz) == (0, 140)
    assert s.temps == {
        "BCPU": 41, "MCPU": 41, "GPU": 39, "PLL": 41, "Tboard": 37, "Tdiode": 37.25, "PMIC": 100, "thermal": 39.9,
    }
    assert total_power_mw(s) == 1931 and total_power_scope(s) == "VDD_IN"


def test_tx2_l4t32_input_rail_found_anywhere():
    s = parse_line(TX2_L4T32)
    assert [r[0] for r in s.rails] == [
        "VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR",
    ]
    assert s.rails[3] == ("VDD_IN", 5297, 5297)
    assert total_power_mw(s) == 5297  # the input rail, not the sum (which would be 9367)
    assert s.temps["GPU"] == 39.5 and s.cpu[1] == (49, 2031)


def test_cores_off_and_no_rails_without_root():
    s = parse_line(TX2_NO_ROOT)
    assert s.cpu == [(3, 345), (None, None), (None, None), (0, 345), (1, 345), (1, 345)]
    assert (s.gr3d_percent, s.gr3d_freq_mhz) == (0, None)
    assert s.rails == [] and total_power_mw(s) is None
    assert s.temps["BCPU"] == 50.5


def test_nano_pom_rails_and_iram():
    s = parse_line(NANO)
    assert s.rails == [("POM_5V_IN", 4520, 4680), ("POM_5V_GPU", 0, 0), ("POM_5V_CPU", 1078, 1205)]
    assert total_power_mw(s) == 4520 and total_power_scope(s) == "POM_5V_IN"
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb) == (1180, 3965, 149)
    assert s.cpu == [(30, 1036), (33, 1036), (28, 1036), (26, 1036)]
    assert s.temps["AO"] == 65 and s.temps["thermal"] == 59.75


def test_agx_xavier_gpu_rail_vs_gpu_temperature():
    s = parse_line(AGX_XAVIER)
    assert s.rails == [
        ("GPU", 463, 463), ("CPU", 618, 618), ("SOC", 2936, 2936), ("CV", 0, 0), ("VDDRQ", 309, 309),
        ("SYS5V", 3306, 3306),
    ]
    assert s.temps["GPU"] == 30.5 and s.temps["CPU"] == 31.5
    assert len(s.cpu) == 8 and s.gr3d_percent == 0
    assert total_power_mw(s) == 463 + 618 + 2936 + 0 + 309 + 3306  # no input rail: sum
    assert total_power_scope(s) == "sum of rails GPU+CPU+SOC+CV+VDDRQ+SYS5V"


def test_orin_nano_timestamp_and_mw_rails():
    s = parse_line(ORIN_NANO_IDLE)
    assert s.timestamp == datetime(2025, 6, 18, 11, 25, 24)
    assert s.rails == [("VDD_IN", 4824, 4824), ("VDD_CPU_GPU_CV", 518, 518), ("VDD_SOC", 1475, 1475)]
    assert s.temps == {"cpu": 50.031, "soc2": 49.031, "soc0": 50, "gpu": 49.031, "tj": 50.25, "soc1": 50.25}
    assert s.cpu[4] == (2, 729) and (s.gr3d_percent, s.gr3d_freq_mhz) == (0, None)
    assert (s.swap_used_mb, s.swap_total_mb, s.swap_cached_mb) == (1518, 16384, 174)
    assert total_power_mw(s) == 4824


def test_orin_gr3d_bracketed_clock():
    s = parse_line(ORIN_NANO_LOAD)
    assert (s.gr3d_percent, s.gr3d_freq_mhz, s.gr3d_freqs_mhz) == (63, 621, (621,))
    assert s.emc_percent == 43
    assert total_power_mw(s) == 12479


def test_agx_orin_duplicate_nc_rails_and_offline_sensors():
    s = parse_line(AGX_ORIN)
    assert s.rails == [
        ("VDD_GPU_SOC", 2340, 2340),
        ("VDD_CPU_CV", 390, 390),
        ("VIN_SYS_5V0", 4025, 4025),
        ("NC", 0, 0),
        ("VDDQ_VDD2_1V8AO", 301, 301),
        ("NC", 0, 0),
    ]
    assert "GPU" not in s.temps and "CV0" not in s.temps  # -256C = offline sensor
    assert s.temps["tj"] == 44.343 and s.temps["CPU"] == 44.562
    assert s.gr3d_freqs_mhz == (0, 0) and s.gr3d_freq_mhz == 0 and s.gr3d_percent == 0
    assert len(s.cpu) == 12
    # VIN_SYS_5V0 is a module sub-rail, not the input: AGX Orin's total is the sum
    assert total_power_mw(s) == 2340 + 390 + 4025 + 301
    assert total_power_scope(s) == "sum of rails VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO"


def test_thor_three_values_per_rail():
    s = parse_line(THOR)
    assert s.rails == [
        ("VDD_GPU", 37528, 37528),
        ("VDD_CPU_SOC_MSS", 18961, 18961),
        ("VIN_SYS_5V0", 18331, 18331),
        ("VIN", 87426, 43713),  # instant, average; the third value (max) is dropped
    ]
    assert total_power_mw(s) == 87426 and total_power_scope(s) == "VIN"
    assert len(s.cpu) == 14 and s.cpu[-1] == (2, 972)
    assert s.gr3d_percent is None and s.gr3d_freq_mhz is None
    assert s.temps["gpu"] == 62.906 and s.ram_total_mb == 125749


def test_format_variants_constructed():
    """Constructed (not captured) tokens for variants described in the module docstring:
    Thor's ``current/max`` temperatures, clock-only GR3D, shared CPU clock with ``off``,
    a negative calibrated rail, and kB memory units."""
    s = parse_line(
        "RAM 512/1024kB CPU [0%,5%,off]@2601 GR3D_FREQ @[1574,1574,1574] gpu@56.937C/66.625C "
        "VDD_GPU -392mW/-392mW VIN 15004mW/15096mW"
    )
    assert s.ram_used_mb == 0.5 and s.ram_total_mb == 1.0
    assert s.cpu == [(0, 2601), (5, 2601), (None, None)]
    assert s.gr3d_percent is None and s.gr3d_freqs_mhz == (1574, 1574, 1574)
    assert s.temps == {"gpu": 56.937}
    assert s.rails == [("VDD_GPU", -392, -392), ("VIN", 15004, 15096)]


def test_garbage_never_raises():
    """Unreadable input gives an empty sample (nothing invented), not an exception; readable
    tokens next to junk are still read."""
    from eo_edge.power.tegrastats import TegrastatsSample

    for junk in ("", "   ", "Unknown command", "RAM x/yMB", "a@b@cC 1/2/3/4", "VDD_IN abc/defmW", "13-45-2024 99:99:99"):
        s = parse_line(junk)
        assert s == TegrastatsSample(raw=junk.strip()), s
        assert total_power_mw(s) is None and total_power_scope(s) is None
    # an unreadable CPU list still yields one (None, None) entry per printed core
    s = parse_line("RAM x/yMB CPU [bad,,]")
    assert s.cpu == [(None, None)] * 3 and s.ram_used_mb is None and s.rails == []
    # junk around a real rail and a real RAM token: those are read, the rest ignored
    s = parse_line("garbage ## VDD_IN 4824mW/4900mW ?? RAM 12/34MB CPU [")
    assert s.rails == [("VDD_IN", 4824.0, 4900.0)] and total_power_mw(s) == 4824.0
    assert (s.ram_used_mb, s.ram_total_mb) == (12.0, 34.0) and s.cpu == [] and s.temps == {}


# -- PowerResult ----------------------------------------------------------------------------


def test_power_result_energy_per_image():
    r = PowerResult("tegrastats", 12000.0, 5000.0, 7000.0, n_samples=20, duration_s=2.0)
    assert r.energy_per_image_mJ(100) == pytest.approx(240.0)  # 12000 mW * 2 s / 100
    assert r.energy_per_image_mJ(100, above_idle=True) == pytest.approx(140.0)
    assert PowerResult("x", None, None, None, 0, 1.0).energy_per_image_mJ(10) is None
    with pytest.raises(ValueError):
        r.energy_per_image_mJ(0)
    assert r.to_dict()["mean_mW"] == 12000.0


# -- sampler, end to end with a stand-in tegrastats ----------------------------------------


def _fake_tegrastats(tmp_path: Path, lines: dict[str, str]) -> tuple[Path, Path, Path]:
    """Write a stand-in ``tegrastats``: prints the line for the current phase (read from
    a file each time) every ``--interval`` ms, and records its argv."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    phase, argv_log = tmp_path / "phase", tmp_path / "argv"
    phase.write_text("idle")
    script = bindir / "tegrastats"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import sys, time
            open({str(argv_log)!r}, "w").write(" ".join(sys.argv[1:]))
            interval = int(sys.argv[sys.argv.index("--interval") + 1]) if "--interval" in sys.argv else 1000
            lines = {lines!r}
            while True:
                try:
                    phase = open({str(phase)!r}).read().strip()
                except OSError:
                    phase = "idle"
                sys.stdout.write(lines.get(phase, lines["idle"]) + "\\n")
                sys.stdout.flush()
                time.sleep(interval / 1000.0)
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script, phase, argv_log


def test_sampler_idle_baseline_window_and_energy(tmp_path, monkeypatch):
    script, phase, argv_log = _fake_tegrastats(tmp_path, {"idle": ORIN_NANO_IDLE, "load": ORIN_NANO_LOAD})
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    sampler = best_sampler(interval_ms=20)  # tegrastats on PATH wins
    assert isinstance(sampler, TegrastatsSampler)
    try:
        idle = sampler.idle_baseline(0.4)
        assert idle == 4824.0  # VDD_IN of the idle line
        phase.write_text("load")
        time.sleep(0.15)  # lines in flight at the switch fall between the two windows
        sampler.start()
        time.sleep(0.5)
        result = sampler.stop()
    finally:
        sampler.close()
    assert argv_log.read_text() == "--interval 20"
    assert result.source == "tegrastats" and result.scope == "VDD_IN"
    assert result.mean_mW == 12479.0 and result.idle_mW == 4824.0
    assert result.above_idle_mW == 12479.0 - 4824.0
    assert result.n_samples >= 5
    assert 0.5 <= result.duration_s < 2.0
    assert result.energy_per_image_mJ(50) == pytest.approx(12479.0 * result.duration_s / 50)
    assert result.energy_per_image_mJ(50, above_idle=True) == pytest.approx(7655.0 * result.duration_s / 50)
    assert sampler._proc is None  # stop() terminated the subprocess


def test_sampler_without_rails_reports_why(tmp_path):
    script, _phase, _argv = _fake_tegrastats(tmp_path, {"idle": TX2_NO_ROOT})
    sampler = TegrastatsSampler(interval_ms=20, executable=str(script))
    sampler.start()
    time.sleep(0.3)
    result = sampler.stop()
    assert result.mean_mW is None and result.n_samples == 0 and result.idle_mW is None
    assert "root" in result.note and "\n" not in result.note


def test_sampler_missing_executable(tmp_path):
    missing = str(tmp_path / "nope" / "tegrastats")
    ok, reason = TegrastatsSampler.available(missing)
    assert not ok and "not found" in reason
    sampler = TegrastatsSampler(executable=missing)
    with pytest.raises(BackendUnavailable, match="tegrastats unavailable"):
        sampler.start()
    with pytest.raises(RuntimeError):
        sampler.stop()
