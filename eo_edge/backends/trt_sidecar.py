"""The JSON sidecar written next to every TensorRT engine, and the portability check.

A serialized TensorRT engine ("plan") only runs on the TensorRT version and the GPU model
it was built for (TensorRT Developer Guide, "The Python API > Deserializing a Plan" and
"Advanced Topics > Version Compatibility / Hardware Compatibility": by default "engines
are specific to the exact TensorRT version and GPU model they were built on"). The engine
file itself does not say which, in a form readable without TensorRT, so ``build`` writes
``<engine>.json`` and ``load`` compares it with the machine before deserializing.

Everything here is pure (no TensorRT, no CUDA) except :func:`read_l4t_release` and
:func:`read_board_model`, which read one small file each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..artifact.forms import sidecar_path
from ..errors import EOEdgeError
from ..schemas import ENGINE_SIDECAR as SIDECAR_FORMAT

#: Keys that must match between the sidecar and the current machine.
PORTABILITY_KEYS = ("tensorrt_version", "gpu_name", "compute_capability")
#: Compared only when both sides know them: every Orin module reports the GPU name "Orin"
#: and compute capability 8.7, but an engine tuned on an AGX Orin (16 SMs) is not the
#: engine for an Orin Nano (8 SMs); the device-tree model tells them apart.
OPTIONAL_KEYS = ("board_model",)
_L4T = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")
#: Jetson Linux (L4T) major release -> JetPack major version (JetPack release notes).
_JETPACK_MAJOR = {32: "4", 34: "5", 35: "5", 36: "6", 38: "7", 39: "7"}


def parse_l4t_release(text: str) -> str | None:
    """Jetson Linux release from the text of ``/etc/nv_tegra_release``.

    Example first line: ``# R36 (release), REVISION: 4.0, GCID: ..., BOARD: generic``
    -> ``"R36.4.0"``. Returns ``None`` if the text has no such line.
    """
    m = _L4T.search(text)
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def jetpack_major(l4t_release: str | None) -> str | None:
    """Coarse JetPack major version for an L4T release (``"R36.4.0"`` -> ``"6"``), or ``None``."""
    if not l4t_release:
        return None
    m = re.match(r"R(\d+)", l4t_release)
    return _JETPACK_MAJOR.get(int(m.group(1))) if m else None


def read_l4t_release(path: str | Path = "/etc/nv_tegra_release") -> str | None:
    """The Jetson Linux release of this machine (``"R36.4.0"``), ``None`` off-Jetson."""
    try:
        return parse_l4t_release(Path(path).read_text(errors="replace"))
    except OSError:
        return None


def read_board_model(path: str | Path = "/proc/device-tree/model") -> str | None:
    """The board name from the device tree (``"NVIDIA Jetson AGX Orin Developer Kit"``),
    ``None`` where there is none (x86)."""
    try:
        text = Path(path).read_bytes().split(b"\0", 1)[0].decode(errors="replace").strip()
    except OSError:
        return None
    return text or None


def load_sidecar(engine_path: str | Path) -> dict[str, Any]:
    """Read ``<engine>.json``.

    Raises:
        EOEdgeError: missing or unreadable sidecar (one line, says how to fix it).
    """
    side = sidecar_path(engine_path)
    try:
        data = json.loads(side.read_text())
    except FileNotFoundError:
        raise EOEdgeError(
            f"{engine_path} has no sidecar {side.name}; rebuild the engine with `eo-edge compile --backend tensorrt`"
        ) from None
    except (OSError, ValueError) as e:
        raise EOEdgeError(f"cannot read engine sidecar {side}: {e}") from e
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise EOEdgeError(f"{side} is not an eo-edge TensorRT engine sidecar ({SIDECAR_FORMAT})")
    return data


def portability_mismatches(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Which of :data:`PORTABILITY_KEYS` (and :data:`OPTIONAL_KEYS` known on both sides)
    differ, as ``"key: built X, here Y"`` strings.

    Pure function. Values are compared as trimmed strings; a portability key missing on
    either side counts as a mismatch.
    """
    out = []
    for key in PORTABILITY_KEYS + OPTIONAL_KEYS:
        a, b = recorded.get(key), current.get(key)
        if key in OPTIONAL_KEYS and (not a or not b):
            continue
        if a is None or b is None or str(a).strip() != str(b).strip():
            out.append(f"{key}: built {a!s}, here {b!s}")
    return out


def check_portable(engine_path: str | Path, recorded: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse an engine built for another TensorRT version / GPU model / compute capability.

    Pure function (TensorRT Developer Guide, "Version Compatibility" and "Hardware
    Compatibility": a default engine is tied to both).

    Args:
        engine_path: the engine (for the message).
        recorded: its sidecar (see :func:`load_sidecar`).
        current: this machine: ``{"tensorrt_version", "gpu_name", "compute_capability",
            "board_model"}`` (``board_model`` may be ``None``).

    Raises:
        EOEdgeError: one line naming every difference and the fix.
    """
    bad = portability_mismatches(recorded, current)
    if bad:
        raise EOEdgeError(
            f"TensorRT engine {Path(engine_path).name} was built for another machine ({'; '.join(bad)}); "
            "engines are not portable, rebuild it here with `eo-edge compile --backend tensorrt`"
        )
