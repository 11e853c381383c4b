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
