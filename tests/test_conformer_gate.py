"""The accuracy gate's verdicts decide which Conformer paths the start-up measurement may time."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import pytest

from shared.speech.engines.conformer.gate import (
    CONSERVATIVE,
    GATE_FILE,
    candidates,
    path_lanes,
    path_name,
    read_gate,
    split_path,
)
from shared.speech.tuning import cpu_family

XEON = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_tile amx_int8\n"
EPYC_AVX2 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n"
EPYC_512 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512_vnni\n"


@pytest.mark.parametrize(
    ("cpuinfo", "family"),
    [
        (XEON, "GenuineIntel avx512+amx"),
        (EPYC_AVX2, "AuthenticAMD avx2"),
        (EPYC_512, "AuthenticAMD avx512-vnni"),
    ],
)
def test_cpu_family_is_vendor_and_widest_tier(tmp_path: Path, cpuinfo: str, family: str) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    assert cpu_family(info) == family


def _gate(tmp_path: Path, admitted: list[str], ort_version: str = "1.32.0") -> Path:
    gate = tmp_path / "gate.json"
    verdict = {"admitted": admitted, "onnxruntime": ort_version}
    gate.write_text(json.dumps({"GenuineIntel avx512+amx": verdict}))
    return gate


def test_a_recorded_family_gets_its_admitted_paths(tmp_path: Path) -> None:
    gate = _gate(tmp_path, ["extended", "basic", "all", "all+int8"])
    chosen = candidates("GenuineIntel avx512+amx", "1.32.1", "auto", gate)
    assert chosen.paths == ("extended", "basic", "all", "all+int8")
    assert "accuracy gate for GenuineIntel avx512+amx" in chosen.source


@pytest.mark.parametrize(
    ("family", "runtime"),
    [("AuthenticAMD avx2", "1.32.0"), ("GenuineIntel avx512+amx", "1.33.0")],
)
def test_no_verdict_or_another_runtime_falls_back(tmp_path: Path, family: str, runtime: str):
    gate = _gate(tmp_path, ["extended", "basic", "all+int8"])
    chosen = candidates(family, runtime, "auto", gate)
    assert chosen.paths == CONSERVATIVE and "no accuracy-gate verdict" in chosen.source
    assert candidates(family, runtime, "auto", tmp_path / "missing.json").paths == CONSERVATIVE


def test_precision_narrows_the_admitted_paths(tmp_path: Path) -> None:
    gate = _gate(tmp_path, ["extended", "basic", "all", "all+int8"])
    family = "GenuineIntel avx512+amx"
    assert candidates(family, "1.32.0", "fp32", gate).paths == ("extended", "basic", "all")
    int8 = candidates(family, "1.32.0", "int8", gate).paths
    assert int8 == ("extended+int8", "basic", "all+int8")  # basic runs the graph as shipped
    assert split_path("all+int8") == ("all", True) and path_name("basic", True) == "basic"


def test_lanes_are_part_of_a_path_and_survive_the_precision_setting(tmp_path: Path) -> None:
    """Two lanes change numerics (each quantizes its own rows), so they are gated like a level:
    a forced precision keeps them, and a path without them runs in one."""
    assert split_path("all+int8+lanes2") == ("all", True) and path_lanes("all+int8+lanes2") == 2
    assert split_path("extended+lanes2") == ("extended", False) and path_lanes("all+int8") == 1
    assert (
        path_name("all", True, 2) == "all+int8+lanes2" and path_name("basic", False, 1) == "basic"
    )
    gate = _gate(tmp_path, ["extended", "basic", "all+int8+lanes2", "extended+lanes2"])
    family = "GenuineIntel avx512+amx"
    fp32 = candidates(family, "1.32.0", "fp32", gate).paths
    assert fp32 == ("extended", "basic", "all+lanes2", "extended+lanes2")
    int8 = candidates(family, "1.32.0", "int8", gate).paths
    assert int8 == ("extended+int8", "basic", "all+int8+lanes2", "extended+int8+lanes2")


def test_the_recorded_verdicts_are_well_formed() -> None:
    """What the start-up measurement reads: every verdict names known paths, basic among them
    (the reference every other path is scored against passes its own gate)."""
    gate = read_gate(GATE_FILE)
    assert gate, "gate.json holds no verdict"
    for verdict in gate.values():
        assert "basic" in verdict["admitted"] and verdict["onnxruntime"]
        assert set(verdict["admitted"]) <= set(verdict["paths"])
    here = candidates(cpu_family(), ort.__version__, "auto")
    recorded = gate.get(cpu_family(), {})
    same_runtime = recorded.get("onnxruntime", "").split(".")[:2] == ort.__version__.split(".")[:2]
    assert here.paths == (tuple(recorded["admitted"]) if same_runtime else CONSERVATIVE)
