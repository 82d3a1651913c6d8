"""gpu_facts: nvidia-smi output parsing (module_utils.nvidia_smi), the module, the fake nvidia-smi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import nvidia_smi
from ansible_collections.myia.genai_stack.plugins.modules import gpu_facts
from tests.unit.plugins.conftest import RunModule

ROOT = Path(__file__).resolve().parents[3]
FAKE = ROOT / "tests" / "standins" / "nvidia-smi" / "nvidia-smi"

# Outputs in the exact format of `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used
# --format=csv,noheader,nounits` (", "-separated, MiB, one line per GPU, trailing newline).
ONE_GPU = "0, GPU-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab, NVIDIA GeForce RTX 3090, 24576, 1\n"
THREE_GPUS = (
    "0, GPU-5f1c4a0e-8d3b-4c1e-9f7a-2b6d8e0c1a3f, NVIDIA GeForce RTX 3090, 24576, 18234\n"
    "1, GPU-7a9e2c4d-1b3f-4e5a-8c6d-0f2e4a6c8b1d, NVIDIA GeForce RTX 3090, 24576, 17890\n"
    "2, GPU-3c5e7a9b-2d4f-4a6c-8e0b-1d3f5a7c9e2b, NVIDIA RTX 6000 Ada Generation, 49140, 0\n"
)
EIGHT_GPUS = "".join(
    f"{i}, GPU-{i:08x}-1111-2222-3333-44445555666{i}, NVIDIA H100 80GB HBM3, 81559, {i * 1000}\n"
    for i in range(8)
)
NA_MEMORY = (
    "0, GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, NVIDIA GH200 480GB, [N/A], [N/A]\n"
    "1, MIG-11111111-2222-3333-4444-555555555555, NVIDIA A100-SXM4-40GB, 40960, [Not Supported]\n"
)
DRIVER_ERROR = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n\n"
)
WSL_VERSION = (
    "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC) 11.2.0, "
    "GNU ld (GNU Binutils) 2.37) #1 SMP Fri Mar 29 23:14:13 UTC 2024\n"
)
DEBIAN_VERSION = (
    "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) "
    "12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1\n"
)


# --- parsing ---------------------------------------------------------------------------------


def test_one_gpu() -> None:
    assert nvidia_smi.parse_query(ONE_GPU) == [
        {
            "index": 0,
            "uuid": "GPU-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab",
            "name": "NVIDIA GeForce RTX 3090",
            "memory_total_mib": 24576,
            "memory_used_mib": 1,
        }
    ]


def test_three_gpus_with_spaces_in_names() -> None:
    gpus = nvidia_smi.parse_query(THREE_GPUS)
    assert [g["index"] for g in gpus] == [0, 1, 2]
    assert [g["name"] for g in gpus] == [
        "NVIDIA GeForce RTX 3090",
        "NVIDIA GeForce RTX 3090",
        "NVIDIA RTX 6000 Ada Generation",
    ]
    assert [g["memory_total_mib"] for g in gpus] == [24576, 24576, 49140]
    assert [g["memory_used_mib"] for g in gpus] == [18234, 17890, 0]
    assert gpus[2]["uuid"] == "GPU-3c5e7a9b-2d4f-4a6c-8e0b-1d3f5a7c9e2b"


def test_eight_gpus() -> None:
    gpus = nvidia_smi.parse_query(EIGHT_GPUS)
    assert len(gpus) == 8
    assert gpus[7] == {
        "index": 7,
        "uuid": "GPU-00000007-1111-2222-3333-444455556667",
        "name": "NVIDIA H100 80GB HBM3",
        "memory_total_mib": 81559,
        "memory_used_mib": 7000,
    }


def test_memory_not_available_is_none() -> None:
    gpus = nvidia_smi.parse_query(NA_MEMORY)
    assert gpus[0]["memory_total_mib"] is None and gpus[0]["memory_used_mib"] is None
    assert gpus[1]["memory_total_mib"] == 40960 and gpus[1]["memory_used_mib"] is None


def test_name_with_a_comma_and_units_and_blank_lines() -> None:
    text = "\n0, GPU-x, Tesla K80, rev. B, 11441 MiB, 0 MiB\r\n\n"
    assert nvidia_smi.parse_query(text) == [
        {
            "index": 0,
            "uuid": "GPU-x",
            "name": "Tesla K80, rev. B",
            "memory_total_mib": 11441,
            "memory_used_mib": 0,
        }
    ]


def test_empty_output_is_no_gpu() -> None:
    assert nvidia_smi.parse_query("") == []
    assert nvidia_smi.interpret(0, "\n") == ([], nvidia_smi.NO_DEVICES, "nvidia-smi listed no GPU")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("0, GPU-x, NVIDIA GeForce RTX 3090\n", "expected 5 fields"),
        ("zero, GPU-x, NVIDIA GeForce RTX 3090, 24576, 1\n", "index is not a number"),
        ("0, GPU-x, NVIDIA GeForce RTX 3090, lots, 1\n", "not a memory figure"),
        ("0, , NVIDIA GeForce RTX 3090, 24576, 1\n", "empty UUID or name"),
        (ONE_GPU + ONE_GPU, "listed twice"),
    ],
)
def test_malformed_output_is_an_error(text: str, error: str) -> None:
    with pytest.raises(nvidia_smi.NvidiaSmiParseError, match=error):
        nvidia_smi.parse_query(text)
    with pytest.raises(nvidia_smi.NvidiaSmiParseError):
        nvidia_smi.interpret(0, text)


@pytest.mark.parametrize(
    ("value", "mib"),
    [("N/A", None), ("n/a", None), ("[N/A]", None), (" ", None), ("11441MiB", 11441),
     ("11441 MiB", 11441), ("2048.0", 2048)],
)  # fmt: skip
def test_memory_figures(value: str, mib: int | None) -> None:
    assert nvidia_smi.parse_mib(value) == mib


@pytest.mark.parametrize("value", ["[N/A", "N/A]", "12]", "[12"])
def test_a_half_bracketed_memory_figure_is_an_error(value: str) -> None:
    with pytest.raises(nvidia_smi.NvidiaSmiParseError) as err:
        nvidia_smi.parse_mib(value)
    assert str(err.value) == f"not a memory figure in MiB: {value!r}"


def test_too_few_fields_names_every_field() -> None:
    with pytest.raises(nvidia_smi.NvidiaSmiParseError) as err:
        nvidia_smi.parse_line("0, GPU-x, NVIDIA GeForce RTX 3090")
    assert str(err.value) == (
        "expected 5 fields (index, uuid, name, memory.total, memory.used), got 3: "
        "'0, GPU-x, NVIDIA GeForce RTX 3090'"
    )


def test_first_line() -> None:
    assert nvidia_smi.first_line("") == ""
    assert nvidia_smi.first_line(" \n\n") == ""
    assert nvidia_smi.first_line("\n  one  \ntwo\n") == "one"


def test_a_silent_failure_says_no_output() -> None:
    assert nvidia_smi.interpret(4, "") == (
        [],
        nvidia_smi.ERROR,
        "nvidia-smi failed (exit 4): no output",
    )
    assert nvidia_smi.interpret(4, " \n", "\n") == (
        [],
        nvidia_smi.ERROR,
        "nvidia-smi failed (exit 4): no output",
    )


def test_stdout_and_stderr_are_separate_lines() -> None:
    # stdout without a final newline: its first line must not run into stderr
    assert nvidia_smi.interpret(4, "Insufficient Permissions", "see the log") == (
        [],
        nvidia_smi.ERROR,
        "nvidia-smi failed (exit 4): Insufficient Permissions",
    )
    assert nvidia_smi.interpret(4, "", "see the log") == (
        [],
        nvidia_smi.ERROR,
        "nvidia-smi failed (exit 4): see the log",
    )


def test_driver_error_is_no_gpu_with_the_message() -> None:
    gpus, status, reason = nvidia_smi.interpret(9, DRIVER_ERROR)
    assert gpus == [] and status == nvidia_smi.DRIVER_ERROR
    assert reason.startswith("NVIDIA driver not usable (nvidia-smi exit 9): NVIDIA-SMI has failed")
    assert "\n" not in reason


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "status"),
    [
        (6, "No devices were found\n", "", nvidia_smi.NO_DEVICES),
        (18, "", "Failed to initialize NVML: Driver/library version mismatch\n", "driver_error"),
        (
            255,
            "Unable to determine the device handle for GPU0000:01:00.0: Unknown Error\n",
            "",
            "driver_error",
        ),
        (12, "NVML Shared Library Not Found\n", "", nvidia_smi.DRIVER_ERROR),
        (4, "Insufficient Permissions\n", "", nvidia_smi.ERROR),
        (0, DRIVER_ERROR, "", nvidia_smi.DRIVER_ERROR),  # a wrapper script that exits 0
    ],
)
def test_other_failures(rc: int, stdout: str, stderr: str, status: str) -> None:
    gpus, got, reason = nvidia_smi.interpret(rc, stdout, stderr)
    assert gpus == [] and got == status
    assert f"exit {rc}" in reason


def test_wsl_detection() -> None:
    assert nvidia_smi.is_wsl(WSL_VERSION)
    assert nvidia_smi.is_wsl("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com)")
    assert not nvidia_smi.is_wsl(DEBIAN_VERSION)


def test_summary() -> None:
    assert nvidia_smi.summary([]) == "no GPU"
    assert nvidia_smi.summary(nvidia_smi.parse_query(ONE_GPU)) == (
        "1 GPU: 0 NVIDIA GeForce RTX 3090 (24576 MiB)"
    )
    assert nvidia_smi.summary(nvidia_smi.parse_query(NA_MEMORY)).startswith(
        "2 GPUs: 0 NVIDIA GH200 480GB (memory N/A), 1 NVIDIA A100-SXM4-40GB (40960 MiB)"
    )


# --- the module --------------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host without nvidia-smi on PATH nor in the WSL directory, not WSL; config in tmp."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    proc_version = tmp_path / "proc_version"
    proc_version.write_text(DEBIAN_VERSION)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_NVIDIA_SMI_CONFIG", str(tmp_path / "fake-nvidia-smi.json"))
    monkeypatch.delenv("FAKE_NVIDIA_SMI_GPUS", raising=False)
    monkeypatch.delenv("FAKE_NVIDIA_SMI_MODE", raising=False)
    monkeypatch.setattr(nvidia_smi, "WSL_LIB_DIR", str(tmp_path / "wsl-lib"))
    monkeypatch.setattr(gpu_facts, "PROC_VERSION", str(proc_version))
    if Path("/usr/bin/nvidia-smi").exists() or Path("/bin/nvidia-smi").exists():
        pytest.skip("this machine has a real nvidia-smi")
    return tmp_path


def install_fake(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "nvidia-smi"
    target.write_text(FAKE.read_text())
    target.chmod(0o755)
    return target


def write_config(host: Path, gpus: list[dict[str, Any]], mode: str = "ok") -> None:
    (host / "fake-nvidia-smi.json").write_text(json.dumps({"mode": mode, "gpus": gpus}))


RIG = [
    {"name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "memory_used_mib": 1},
    {"name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "memory_used_mib": 1},
    {"name": "NVIDIA RTX 6000 Ada Generation", "memory_total_mib": 49140, "memory_used_mib": None},
]


def test_module_lists_gpus_as_result_and_fact(host: Path, run_module: RunModule) -> None:
    fake = install_fake(host / "bin")
    write_config(host, RIG)
    code, result, _ = run_module(gpu_facts, {})
    assert code == 0, result
    assert result["changed"] is False
    assert result["status"] == "ok" and result["reason"] == ""
    assert result["gpu_count"] == 3 and result["nvidia_smi"] == str(fake)
    assert [g["name"] for g in result["gpus"]] == [g["name"] for g in RIG]
    assert result["gpus"][2]["memory_total_mib"] == 49140
    assert result["gpus"][2]["memory_used_mib"] is None
    assert result["ansible_facts"] == {"genai_gpus_discovered": result["gpus"]}
    assert result["wsl"] is False
    assert result["summary"].startswith("3 GPUs: 0 NVIDIA GeForce RTX 3090 (24576 MiB)")


def test_module_runs_in_check_mode(
    host: Path, monkeypatch: pytest.MonkeyPatch, run_module: RunModule
) -> None:
    install_fake(host / "bin")
    monkeypatch.setenv("FAKE_NVIDIA_SMI_GPUS", "8")
    code, result, _ = run_module(gpu_facts, {"require": True}, check=True)
    assert code == 0 and result["gpu_count"] == 8 and result["changed"] is False


def test_module_without_nvidia_smi_is_no_gpu(host: Path, run_module: RunModule) -> None:
    code, result, _ = run_module(gpu_facts, {})
    assert code == 0
    assert result["gpus"] == [] and result["gpu_count"] == 0
    assert result["status"] == "absent" and result["nvidia_smi"] is None
    assert "nvidia-smi not found in PATH" in result["reason"]
    assert result["ansible_facts"] == {"genai_gpus_discovered": []}


def test_module_without_nvidia_smi_fails_when_required(host: Path, run_module: RunModule) -> None:
    code, result, _ = run_module(gpu_facts, {"require": True})
    assert code == 1 and result["failed"] is True
    assert result["msg"].startswith("no NVIDIA GPU found and require is true: nvidia-smi not found")
    assert result["status"] == "absent"


def test_module_driver_error_is_no_gpu_unless_required(host: Path, run_module: RunModule) -> None:
    install_fake(host / "bin")
    write_config(host, RIG, mode="driver_error")
    code, result, _ = run_module(gpu_facts, {})
    assert code == 0 and result["gpus"] == [] and result["status"] == "driver_error"
    assert "couldn't communicate with the NVIDIA driver" in result["reason"]
    assert "exit 9" in result["reason"]

    code, result, _ = run_module(gpu_facts, {"require": True})
    assert code == 1 and "couldn't communicate with the NVIDIA driver" in result["msg"]


def test_module_unreadable_output_fails_even_when_not_required(
    host: Path, run_module: RunModule
) -> None:
    odd = host / "bin" / "nvidia-smi"
    odd.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA GeForce RTX 3090'\n")
    odd.chmod(0o755)
    code, result, _ = run_module(gpu_facts, {})
    assert code == 1 and "cannot read the output" in result["msg"]
    assert "expected 5 fields" in result["msg"]


def test_module_finds_the_wsl_nvidia_smi(
    host: Path, monkeypatch: pytest.MonkeyPatch, run_module: RunModule
) -> None:
    (host / "proc_version").write_text(WSL_VERSION)
    code, result, _ = run_module(gpu_facts, {})
    assert code == 0 and result["wsl"] is True and result["gpus"] == []
    assert "on WSL2 the NVIDIA driver is installed on Windows" in result["reason"]

    fake = install_fake(host / "wsl-lib")
    monkeypatch.setenv("FAKE_NVIDIA_SMI_GPUS", "1")
    code, result, _ = run_module(gpu_facts, {})
    assert code == 0 and result["wsl"] is True
    assert result["nvidia_smi"] == str(fake) and result["gpu_count"] == 1


def test_module_explicit_executable(
    host: Path, monkeypatch: pytest.MonkeyPatch, run_module: RunModule
) -> None:
    missing = host / "nowhere" / "nvidia-smi"
    code, result, _ = run_module(gpu_facts, {"executable": str(missing)})
    assert code == 0 and result["status"] == "absent"
    assert result["reason"] == f"nvidia-smi not found at {missing}"

    fake = install_fake(host / "elsewhere")
    monkeypatch.setenv("FAKE_NVIDIA_SMI_GPUS", "2")
    code, result, _ = run_module(gpu_facts, {"executable": str(fake)})
    assert code == 0 and result["gpu_count"] == 2


# --- the fake nvidia-smi, held to the real formats -------------------------------------------


def fake(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_NVIDIA_SMI")}
    environ["FAKE_NVIDIA_SMI_CONFIG"] = "/nonexistent/fake-nvidia-smi.json"
    return subprocess.run(
        [sys.executable, str(FAKE), *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_fake_prints_what_the_parser_reads() -> None:
    gpus = [{"name": n, "memory_total_mib": 24576, "memory_used_mib": 3} for n in ("A", "B C")]
    done = fake(*nvidia_smi.QUERY_ARGS, FAKE_NVIDIA_SMI_GPUS=json.dumps(gpus))
    assert done.returncode == 0
    parsed = nvidia_smi.parse_query(done.stdout)
    assert [(g["index"], g["name"], g["memory_used_mib"]) for g in parsed] == [
        (0, "A", 3),
        (1, "B C", 3),
    ]
    assert done.stdout.splitlines()[1].startswith("1, GPU-")


def test_fake_defaults_to_three_rtx_3090_and_prints_headers_and_units() -> None:
    done = fake("--query-gpu=index,name,memory.total", "--format=csv")
    assert done.stdout.splitlines() == [
        "index, name, memory.total [MiB]",
        "0, NVIDIA GeForce RTX 3090, 24576 MiB",
        "1, NVIDIA GeForce RTX 3090, 24576 MiB",
        "2, NVIDIA GeForce RTX 3090, 24576 MiB",
    ]


@pytest.mark.parametrize(
    ("args", "rc", "out"),
    [
        (["--bogus"], 2, "Invalid combination of input arguments"),
        (["--query-gpu=index"], 2, "Invalid combination of input arguments"),
        (["--query-gpu=index,bogus", "--format=csv"], 2, 'Field "bogus" is not a valid field'),
        (["--query-gpu=index", "--format=json"], 2, "Invalid combination of input arguments"),
        (["-L"], 0, "GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-"),
        ([], 0, "Driver Version"),
    ],
)
def test_fake_answers_like_the_real_one(args: list[str], rc: int, out: str) -> None:
    done = fake(*args)
    assert done.returncode == rc and out in done.stdout


@pytest.mark.parametrize(("mode", "rc"), [("driver_error", 9), ("no_devices", 6)])
def test_fake_failure_modes(mode: str, rc: int) -> None:
    done = fake(*nvidia_smi.QUERY_ARGS, FAKE_NVIDIA_SMI_MODE=mode)
    assert done.returncode == rc
    gpus, status, _ = nvidia_smi.interpret(done.returncode, done.stdout, done.stderr)
    assert gpus == [] and status == mode
