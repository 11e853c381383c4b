"""tegrastats: parse its lines, and sample board power around a timed window.

``tegrastats`` is NVIDIA's status printer on Jetson boards (Jetson Linux Developer
Guide, "Tegrastats Utility"; older L4T: "Appendix > TegraStats"). It prints one line per
interval. Every board generation prints a different line; :func:`parse_line` reads all of
them (the tests hold real lines from TX1, TX2, Nano, AGX Xavier, Orin Nano, AGX Orin and
Thor):

* timestamp ``MM-DD-YYYY HH:MM:SS`` at the start (JetPack 5 and later);
* ``RAM used/totalMB (lfb NxSMB)``, ``SWAP used/totalMB (cached NMB)``;
* ``CPU [12%@1479,off,3%@1479]`` (per-core load @ MHz; ``off`` = core powered down) or
  ``cpu [17%,13%]@408`` (one frequency for all cores, L4T 28);
* ``GR3D_FREQ 63%@621`` / ``63%@[621]`` / ``0%@[0,0]`` (one frequency per GPC) /
  ``@[1574,1574]`` (no load, Thor) / ``GR3D 3%@76`` (L4T 28);
* temperatures ``NAME@42.5C`` (``gpu@56.9C/66.6C`` on Thor: current/max; ``-256C``
  means an offline sensor and is dropped);
* power rails ``NAME instant/average`` in mW: no unit before JetPack 5
  (``POM_5V_IN 2132/2132``, Xavier ``GPU 463/463``), ``mW`` suffix from JetPack 5
  (``VDD_IN 4824mW/4824mW``), and a third value, the maximum, on Thor
  (``VIN 87426mW/43713mW/87426mW``). Rails are only printed when tegrastats can read the
  INA3221 power monitors (typically as root); a line without rails parses fine.

Units: MB for memory, % for load, MHz for clocks, Celsius for temperatures, mW for power.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import BackendUnavailable
from .base import PowerResult, PowerSampler, make_result, mean_or_none

#: Rails that measure the whole board's input, in the order they are looked for.
#: ``VDD_IN``: TX2, Xavier NX, Orin Nano/NX (module input). ``POM_5V_IN``: Nano, TX1
#: (5 V input). ``VIN``: Thor (board input). Deliberately NOT in the list:
#: ``VIN_SYS_5V0`` - on AGX Orin and Thor it is one module sub-rail (system 5 V) beside
#: ``VDD_GPU_SOC``/``VDD_CPU_CV``, not the input; AGX Xavier and AGX Orin have no input
#: rail at all, so their total is the sum of all rails (as jetson-stats does, after
#: NVIDIA's forum answer "Xavier Jetson total power consumption").
INPUT_RAILS: tuple[str, ...] = ("VDD_IN", "POM_5V_IN", "VIN")

_TIMESTAMP = re.compile(r"^\s*(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)([kMG])B")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)([kMG])B(?: ?\(cached (\d+)([kMG])B\))?")
_CPU = re.compile(r"\b(?:CPU|cpu) \[([^\]]*)\](?:@(\d+))?")
_CPU_CORE = re.compile(r"^(\d+(?:\.\d+)?)%(?:@(\d+))?$")
_GR3D = re.compile(r"\bGR3D(?:_FREQ)? (?:(\d+(?:\.\d+)?)%)?(?:@(?:\[([\d,]*)\]|(\d+)))?")
_EMC = re.compile(r"\bEMC(?:_FREQ)? (\d+(?:\.\d+)?)%")
_TEMP = re.compile(r"(?<![\w@])([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?(?![\w])")
_VALUE = r"(-?\d+(?:\.\d+)?)(?:mW)?"
_RAIL = re.compile(rf"(?<![\w/])([A-Z][A-Z0-9_]*) {_VALUE}/{_VALUE}(?:/{_VALUE})?(?=\s|$)")
_OFFLINE_SENSOR_C = -256.0
_UNIT_MB = {"k": 1 / 1024, "M": 1.0, "G": 1024.0}


@dataclass
class TegrastatsSample:
    """One parsed tegrastats line. Fields the line does not print are ``None`` / empty.

    Attributes:
        raw: the line, stripped.
        timestamp: the line's own timestamp (local time, naive), if it has one.
        ram_used_mb, ram_total_mb: RAM in MB.
        swap_used_mb, swap_total_mb, swap_cached_mb: swap in MB.
        cpu: per core, in printed order: ``(load_percent, freq_mhz)``; ``(None, None)``
            for a core shown as ``off``.
        gr3d_percent: GPU (GR3D) load in %, ``None`` if not printed (Thor).
        gr3d_freq_mhz: GPU clock in MHz (the first GPC's when several are printed).
        gr3d_freqs_mhz: all printed GPC clocks in MHz.
        emc_percent: memory-controller load in %.
        temps: ``{sensor name: Celsius}`` (offline ``-256C`` sensors dropped).
        rails: ``(name, instant_mW, average_mW)`` per rail, in printed order, duplicate
            names kept (AGX Orin prints two ``NC`` rails).
    """

    raw: str
    timestamp: datetime | None = None
    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    swap_used_mb: float | None = None
    swap_total_mb: float | None = None
    swap_cached_mb: float | None = None
    cpu: list[tuple[float | None, int | None]] = field(default_factory=list)
    gr3d_percent: float | None = None
    gr3d_freq_mhz: int | None = None
    gr3d_freqs_mhz: tuple[int, ...] = ()
    emc_percent: float | None = None
    temps: dict[str, float] = field(default_factory=dict)
    rails: list[tuple[str, float | None, float | None]] = field(default_factory=list)


def parse_line(line: str) -> TegrastatsSample:
    """Parse one tegrastats line of any board generation (see the module docstring).

    Pure function: no I/O. Never raises on odd input; unknown tokens are ignored.

    Args:
        line: one line of ``tegrastats`` output.

    Returns:
        :class:`TegrastatsSample` (memory MB, load %, clocks MHz, Celsius, mW).
    """
    text = line.strip()
    s = TegrastatsSample(raw=text)
    if m := _TIMESTAMP.match(text):
        mo, d, y, hh, mi, ss = (int(g) for g in m.groups())
        try:
            s.timestamp = datetime(y, mo, d, hh, mi, ss)
        except ValueError:
            s.timestamp = None
    if m := _RAM.search(text):
        k = _UNIT_MB[m.group(3)]
        s.ram_used_mb, s.ram_total_mb = float(m.group(1)) * k, float(m.group(2)) * k
    if m := _SWAP.search(text):
        k = _UNIT_MB[m.group(3)]
        s.swap_used_mb, s.swap_total_mb = float(m.group(1)) * k, float(m.group(2)) * k
        if m.group(4) is not None:
            s.swap_cached_mb = float(m.group(4)) * _UNIT_MB[m.group(5)]
    if m := _CPU.search(text):
        s.cpu = _parse_cores(m.group(1), int(m.group(2)) if m.group(2) else None)
    if m := _GR3D.search(text):
        s.gr3d_percent = float(m.group(1)) if m.group(1) is not None else None
        if m.group(2):
            s.gr3d_freqs_mhz = tuple(int(v) for v in m.group(2).split(",") if v)
        elif m.group(3):
            s.gr3d_freqs_mhz = (int(m.group(3)),)
        s.gr3d_freq_mhz = s.gr3d_freqs_mhz[0] if s.gr3d_freqs_mhz else None
    if m := _EMC.search(text):
        s.emc_percent = float(m.group(1))
    for name, value in _TEMP.findall(text):
        celsius = float(value)
        if celsius > _OFFLINE_SENSOR_C:
            s.temps[name] = celsius
    for name, instant, average, _maximum in _RAIL.findall(text):
        s.rails.append((name, float(instant), float(average)))
    return s


def _parse_cores(body: str, shared_freq: int | None) -> list[tuple[float | None, int | None]]:
    cores: list[tuple[float | None, int | None]] = []
    for token in body.split(","):
        token = token.strip()
        m = _CPU_CORE.match(token)
        if m is None:  # "off", or anything unreadable
            cores.append((None, None))
        else:
            cores.append((float(m.group(1)), int(m.group(2)) if m.group(2) else shared_freq))
    return cores


def total_power_mw(sample: TegrastatsSample) -> float | None:
    """Whole-board power of one sample in mW (instant value).

    The first rail of :data:`INPUT_RAILS` present (``VDD_IN``, ``POM_5V_IN``, ``VIN``)
    if any, else the sum of all printed rails (AGX Xavier, AGX Orin), else ``None``
    (no rails printed, e.g. tegrastats not run as root).
    """
    return _total(sample)[1]


def total_power_scope(sample: TegrastatsSample) -> str | None:
    """What :func:`total_power_mw` measured for this sample, e.g. ``"VDD_IN"`` or
    ``"sum of rails GPU+CPU+SOC"``; ``None`` without rails."""
    return _total(sample)[0]


def _total(sample: TegrastatsSample) -> tuple[str | None, float | None]:
    for name in INPUT_RAILS:
        for rail, instant, _avg in sample.rails:
            if rail == name and instant is not None:
                return name, instant
    values = [(n, v) for n, v, _a in sample.rails if v is not None]
    if not values:
        return None, None
    names = [n for n, _v in values if n != "NC"]
    return "sum of rails " + "+".join(names), float(sum(v for _n, v in values))


class TegrastatsSampler(PowerSampler):
    """Board power from a ``tegrastats --interval N`` subprocess read in a background thread.

    Each line is stamped with ``time.monotonic()`` when read and reduced to
    :func:`total_power_mw`; a window's mean is the mean of the lines read inside it (the
    instant values; tegrastats' own running average is not used). The subprocess (run
    under ``stdbuf -oL`` when available, so lines are not held in a pipe buffer) starts at
    the first :meth:`idle_baseline` or :meth:`start` and is terminated by :meth:`stop` /
    :meth:`close`.

    Args:
        interval_ms: tegrastats sampling interval in ms (``--interval``).
        executable: the tegrastats program (name on ``PATH`` or a path).
    """

    name = "tegrastats"

    def __init__(self, interval_ms: int = 100, executable: str = "tegrastats"):
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self.interval_ms = int(interval_ms)
        self.executable = executable
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._readings: list[tuple[float, float | None]] = []
        self._scope: str | None = None
        self._stderr = ""
        self._idle_mW: float | None = None
        self._t0: float | None = None

    @classmethod
    def available(cls, executable: str = "tegrastats") -> tuple[bool, str]:
        """``(True, path)`` if ``executable`` is found, else ``(False, reason)``."""
        path = shutil.which(executable)
        if path is None:
            return False, f"'{executable}' not found on PATH (not a Jetson, or not mounted into the container)"
        return True, path

    def idle_baseline(self, seconds: float) -> float | None:
        """Mean board power (mW) over the next ``seconds``; stored as the idle baseline.

        Raises:
            BackendUnavailable: tegrastats cannot be started.
        """
        self._ensure_running()
        t0 = time.monotonic()
        time.sleep(max(0.0, seconds))
        self._idle_mW = mean_or_none(self._window(t0, time.monotonic()))
        return self._idle_mW

    def start(self) -> None:
        """Open the timed window (starts tegrastats if needed).

        Raises:
            BackendUnavailable: tegrastats cannot be started.
        """
        self._ensure_running()
        self._t0 = time.monotonic()

    def stop(self) -> PowerResult:
        """Close the window, terminate tegrastats, return the window's :class:`PowerResult`.

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._t0 is None:
            raise RuntimeError("TegrastatsSampler.stop() called before start()")
        t1 = time.monotonic()
        t0, self._t0 = self._t0, None
        window = self._window(t0, t1)
        with self._lock:
            n_lines = len(self._readings)
        self.close()
        note = ""
        if not window:
            if n_lines and self._scope is None:
                note = "tegrastats printed no power rails (run it as root / in a privileged container)"
            elif self._stderr:
                note = "tegrastats: " + self._stderr.strip().splitlines()[-1][:200]
        result = make_result(self.name, window, t1 - t0, self._idle_mW, scope=self._scope or "", note=note)
        self._idle_mW = None
        return result

    def close(self) -> None:
        """Terminate the tegrastats subprocess (if running) and join the reader thread."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2.0)
        if proc is not None and proc.stderr is not None:
            try:
                self._stderr = proc.stderr.read() or self._stderr
            except (OSError, ValueError):
                pass
            proc.stderr.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    def _ensure_running(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.close()
        path = shutil.which(self.executable)
        if path is None:
            raise BackendUnavailable(
                f"power source tegrastats unavailable: '{self.executable}' not found on PATH"
            )
        with self._lock:
            self._readings = []
        self._stderr = ""
        cmd = [path, "--interval", str(self.interval_ms)]
        stdbuf = shutil.which("stdbuf")
        if stdbuf:  # in case tegrastats block-buffers stdout on a pipe: lines would arrive late, in bursts
            cmd = [stdbuf, "-oL", *cmd]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        except OSError as e:
            raise BackendUnavailable(f"power source tegrastats unavailable: cannot run {path}: {e.strerror}") from e
        self._thread = threading.Thread(target=self._read, args=(self._proc,), name="tegrastats-reader", daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                t = time.monotonic()
                sample = parse_line(line)
                label, value = _total(sample)
                with self._lock:
                    self._readings.append((t, value))
                    if label is not None:
                        self._scope = label
        except (OSError, ValueError):  # pipe closed under us by close()
            return

    def _window(self, t0: float, t1: float) -> list[float]:
        with self._lock:
            return [v for t, v in self._readings if t0 <= t <= t1 and v is not None]
