"""What machine a run used: CPU, cores, OS, Jetson board and power mode, power sources.

Shared by ``eo-edge bench`` (the ``host`` record of a run) and training (the one-line
``host`` of a model card).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def jetson_info() -> dict | None:
    """Jetson board model, L4T release and nvpmodel power mode, or None off a Jetson."""
    rel = Path("/etc/nv_tegra_release")
    if not rel.is_file():
        return None
    info: dict[str, Any] = {"l4t": rel.read_text().splitlines()[0].strip()}
    try:
        info["model"] = Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        pass
    try:
        q = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10)
        info["nvpmodel"] = " ".join(q.stdout.split())
    except (OSError, subprocess.SubprocessError):
        info["nvpmodel"] = None
    return info


def host_record(threads: int, backend_versions: dict[str, str]) -> dict:
    """The host a run measured: CPU, cores and threads used, OS, versions, Jetson info, power sources."""
    from .power import describe_sources

    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "threads_used": threads,
            "os": platform.platform(), "python": platform.python_version(), "versions": backend_versions,
            "jetson": jetson_info(), "power_sources": describe_sources()}


def host_description(device: str) -> str:
    """One line naming the hardware a training run used (CPU model and threads, or the GPU)."""
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"{cpu_name()}, {torch.get_num_threads()} threads of {os.cpu_count()} logical CPUs"


def host_load() -> dict[str, Any]:
    """What else the host is doing, read at one moment: 1/5/15-min load averages (runnable
    processes, ``os.getloadavg``), the CPU frequency governor and current frequency of cpu0
    (``/sys/devices/system/cpu/cpu0/cpufreq``, Linux; ``None`` where absent, e.g. in containers)."""
    rec: dict[str, Any] = {"loadavg": None, "governor": None, "cpu0_mhz": None, "cores": os.cpu_count()}
    try:
        rec["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        pass
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    try:
        rec["governor"] = (base / "scaling_governor").read_text().strip()
    except OSError:
        pass
    try:
        rec["cpu0_mhz"] = int((base / "scaling_cur_freq").read_text().strip()) / 1000
    except (OSError, ValueError):
        pass
    return rec


BUSY_LOAD_PER_CORE = 0.5  # load average per core above which another job competes with the bench
BUSY_ROUND_SPREAD = 1.3  # slowest / fastest round median above which rounds disagree


def busy_verdict(before: dict, after: dict, round_spreads: dict[str, float]) -> dict[str, Any]:
    """Was the host busy while the bench ran?

    Busy when the 1-min load average before the run exceeds ``BUSY_LOAD_PER_CORE`` x cores
    (another job was running), or when the artifacts' interleaved rounds disagree: the median over
    artifacts of (slowest / fastest round median) > ``BUSY_ROUND_SPREAD`` (``round_spreads``: name
    -> ratio), i.e. the host's speed changed during the run. The load average after is recorded
    only: it includes the bench's own threads.

    Returns:
        ``{"busy": bool, "reasons": [str, ...]}``.
    """
    reasons = []
    cores = before.get("cores") or 1
    la = before.get("loadavg")
    if la and la[0] > BUSY_LOAD_PER_CORE * cores:
        reasons.append(f"load average {la[0]:.2f} before the run on {cores} cores")
    if round_spreads:
        med = float(np.median(list(round_spreads.values())))
        if med > BUSY_ROUND_SPREAD:
            worst = max(round_spreads.items(), key=lambda kv: kv[1])
            reasons.append(f"rounds disagree: median slowest/fastest round {med:.2f}x over {len(round_spreads)} "
                           f"artifacts (worst {worst[0]} {worst[1]:.2f}x)")
    return {"busy": bool(reasons), "reasons": reasons}


def git_commit(path: Path | None = None) -> str | None:
    """The git commit of the eo-edge source tree (``None`` for an installed wheel or no git)."""
    root = Path(path or Path(__file__).resolve().parent.parent)
    if not (root / ".git").exists():
        return None
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                           timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() + ("+dirty" if dirty else "")) if r.returncode == 0 else None


def tool_versions() -> dict[str, str]:
    """Versions of the tools an artifact depends on."""
    import onnx
    import onnxruntime

    v = {"eo-edge": __version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
         "python": platform.python_version()}
    try:
        import torch

        v["torch"] = torch.__version__
    except ImportError:
        pass
    return v
