# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the GPUs of a host from ``nvidia-smi``'s CSV query output.

The query is fixed (:data:`QUERY_ARGS`); it prints one line per GPU, fields separated by
``", "``, memory in MiB::

    0, GPU-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab, NVIDIA GeForce RTX 3090, 24576, 1

Memory reads ``[N/A]`` (or another bracketed word) where the driver cannot tell: such figures
become ``None``. When nvidia-smi cannot see GPUs (no driver, driver not loaded, no device) it
exits non-zero with a message; :func:`interpret` turns that into an empty list and a reason.
Pure Python, no Ansible import, so the module, the tests and the panel share it.
"""

from __future__ import annotations

from typing import Any

QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "memory.used")
QUERY_ARGS = (
    "--query-gpu=" + ",".join(QUERY_FIELDS),
    "--format=csv,noheader,nounits",
)
# Where WSL2 puts the Windows driver's nvidia-smi (not always on PATH for non-login shells).
WSL_LIB_DIR = "/usr/lib/wsl/lib"

# Statuses of a discovery.
OK = "ok"  # GPUs listed
ABSENT = "absent"  # no nvidia-smi
DRIVER_ERROR = "driver_error"  # nvidia-smi runs but cannot talk to the driver
NO_DEVICES = "no_devices"  # the driver answers but lists no GPU
ERROR = "error"  # nvidia-smi failed for another reason

# Lower-case fragments of nvidia-smi's messages when the driver is missing, unloaded or broken.
_DRIVER_ERROR_MARKERS = (
    "couldn't communicate with the nvidia driver",
    "nvidia-smi has failed",
    "driver/library version mismatch",
    "nvml",  # Failed to initialize NVML, NVML Shared Library Not Found
    "unable to determine the device handle",
    "gpu is lost",
)
_NO_DEVICE_MARKERS = ("no devices were found",)


class NvidiaSmiParseError(ValueError):
    """nvidia-smi succeeded but printed something that is not the expected CSV."""


def parse_mib(value: str) -> int | None:
    """A memory figure in MiB; ``None`` for ``[N/A]``, ``[Not Supported]`` and the like."""
    text = value.strip()
    if not text or (text.startswith("[") and text.endswith("]")) or text.upper() == "N/A":
        return None
    if text.endswith("MiB"):  # printed without ``nounits``
        text = text[:-3].strip()
    try:
        return int(float(text))
    except ValueError as exc:
        raise NvidiaSmiParseError(f"not a memory figure in MiB: {value!r}") from exc


def parse_line(line: str) -> dict[str, Any]:
    """One CSV line → ``{index, uuid, name, memory_total_mib, memory_used_mib}``.

    The name is everything between the UUID and the two memory figures, so a name holding a
    comma still parses.
    """
    parts = [part.strip() for part in line.split(",")]
    if len(parts) < len(QUERY_FIELDS):
        raise NvidiaSmiParseError(
            f"expected {len(QUERY_FIELDS)} fields ({', '.join(QUERY_FIELDS)}), got {len(parts)}: "
            f"{line!r}"
        )
    try:
        index = int(parts[0])
    except ValueError as exc:
        raise NvidiaSmiParseError(f"GPU index is not a number: {line!r}") from exc
    uuid = parts[1]
    name = ", ".join(parts[2:-2])
    if not uuid or not name:
        raise NvidiaSmiParseError(f"empty UUID or name: {line!r}")
    return {
        "index": index,
        "uuid": uuid,
        "name": name,
        "memory_total_mib": parse_mib(parts[-2]),
        "memory_used_mib": parse_mib(parts[-1]),
    }


def parse_query(text: str) -> list[dict[str, Any]]:
    """Every GPU of the query output, in the order printed (nvidia-smi prints by index)."""
    gpus = [parse_line(line) for line in text.splitlines() if line.strip()]
    seen: set[int] = set()
    for gpu in gpus:
        if gpu["index"] in seen:
            raise NvidiaSmiParseError(f"GPU index {gpu['index']} listed twice")
        seen.add(gpu["index"])
    return gpus


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def interpret(rc: int, stdout: str, stderr: str = "") -> tuple[list[dict[str, Any]], str, str]:
    """Turn one run of the query into ``(gpus, status, reason)``; reason is empty when GPUs were found.

    Raises :class:`NvidiaSmiParseError` when nvidia-smi exits 0 with unexpected output.
    """
    output = "\n".join(part for part in (stdout, stderr) if part and part.strip())
    lowered = output.lower()
    message = first_line(output) or "no output"
    if rc == 0 and not any(m in lowered for m in _DRIVER_ERROR_MARKERS + _NO_DEVICE_MARKERS):
        gpus = parse_query(stdout)
        if gpus:
            return gpus, OK, ""
        return [], NO_DEVICES, "nvidia-smi listed no GPU"
    if any(marker in lowered for marker in _NO_DEVICE_MARKERS):
        return [], NO_DEVICES, f"nvidia-smi found no GPU (exit {rc}): {message}"
    if any(marker in lowered for marker in _DRIVER_ERROR_MARKERS):
        return [], DRIVER_ERROR, f"NVIDIA driver not usable (nvidia-smi exit {rc}): {message}"
    return [], ERROR, f"nvidia-smi failed (exit {rc}): {message}"


def is_wsl(proc_version: str) -> bool:
    """WSL kernels name Microsoft in /proc/version (``...-microsoft-standard-WSL2 ...``)."""
    return "microsoft" in proc_version.lower()


def summary(gpus: list[dict[str, Any]]) -> str:
    """``3 GPUs: 0 NVIDIA GeForce RTX 3090 (24576 MiB), 1 ...`` or ``no GPU``."""
    if not gpus:
        return "no GPU"
    parts = []
    for gpu in gpus:
        total = gpu.get("memory_total_mib")
        memory = f"{total} MiB" if total is not None else "memory N/A"
        parts.append(f"{gpu['index']} {gpu['name']} ({memory})")
    noun = "GPU" if len(gpus) == 1 else "GPUs"
    return f"{len(gpus)} {noun}: " + ", ".join(parts)
