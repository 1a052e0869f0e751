"""Verification: a file appears only once it computes what torch computes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import mfx.export.onnx_export as onnx_export
from mfx.data import RawRatings
from mfx.errors import VerificationError
from mfx.export import export_onnx
from mfx.export.verify import random_batches
from mfx.train import MatrixFactorization


def _corrupt_tables(monkeypatch, row: int) -> None:
    original = MatrixFactorization.folded_tables

    def corrupted(self):
        rows, cols = original(self)
        rows = rows.clone()
        rows[row] += 0.5
        return rows, cols

    monkeypatch.setattr(MatrixFactorization, "folded_tables", corrupted)


@pytest.mark.parametrize("row", [0, 36], ids=["first-row", "last-row"])
def test_corrupted_tables_fail_and_leave_no_file(monkeypatch, tmp_path, make_checkpoint, row):
    checkpoint = make_checkpoint()
    _corrupt_tables(monkeypatch, row)
    failed = r"max \|logits - torch\| .* over the tolerance 1e-04"
    with pytest.raises(VerificationError, match=failed):
        export_onnx(checkpoint, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_keeps_the_previous_file(monkeypatch, tmp_path, make_checkpoint):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    _corrupt_tables(monkeypatch, 5)
    with pytest.raises(VerificationError):
        export_onnx(make_checkpoint(), path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_tolerance_is_the_bar(tmp_path, make_checkpoint):
    with pytest.raises(VerificationError, match="over the tolerance"):
        export_onnx(make_checkpoint(scale=3.0), tmp_path / "m.onnx", fold=True, tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_metadata_out_of_step_with_tables_fails(monkeypatch, tmp_path, make_checkpoint):
    checkpoint = make_checkpoint()
    real = onnx_export._metadata

    def short_rows(loaded, folded, precision):
        meta = real(loaded, folded, precision)
        rows = loaded.row_ids.to_list()[:-1]
        meta["mfx.rows"], meta["mfx.n_rows"] = str(rows).replace("'", '"'), str(len(rows))
        return meta

    monkeypatch.setattr(onnx_export, "_metadata", short_rows)
    with pytest.raises(VerificationError, match="metadata classes or ids differ"):
        export_onnx(checkpoint, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_random_batches_always_include_first_and_last_ids():
    batches = random_batches(50, 7, [1, 2, 333, 4096], seed=0)
    assert [len(b) for b in batches] == [1, 1, 1, 1, 2, 333, 4096]
    singles = {tuple(b[0]) for b in batches[:4]}
    assert singles == {(0, 0), (49, 6), (0, 6), (49, 0)}
    for pairs in batches[4:]:
        assert pairs[:, 0].min() == 0 and pairs[:, 0].max() == 49
        assert pairs[:, 1].min() == 0 and pairs[:, 1].max() == 6


def test_large_models_write_external_data_beside_the_file(monkeypatch, tmp_path, make_checkpoint):
    monkeypatch.setattr(onnx_export, "EMBED_LIMIT", 1024)
    checkpoint = make_checkpoint(n_rows=300, n_cols=200, dim=4, n_classes=5)
    path = tmp_path / "big.onnx"
    report = export_onnx(checkpoint, path)
    data = tmp_path / "big.onnx.data"
    assert report.external_data == data and data.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    model = onnx.load(path, load_external_data=False)
    locations = {
        e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"
    }
    assert locations == {"big.onnx.data"}  # relative: the pair can move together
    onnx.checker.check_model(str(path), full_check=True)
    moved = tmp_path / "moved"
    moved.mkdir()
    path.rename(moved / path.name)
    data.rename(moved / data.name)
    session = ort.InferenceSession(str(moved / path.name), providers=["CPUExecutionProvider"])
    pairs = np.array([[0, 0], [299, 199]], dtype=np.int64)
    with torch.no_grad():
        expected = checkpoint.model(torch.from_numpy(pairs)).numpy()
    np.testing.assert_allclose(session.run(["logits"], {"pairs": pairs})[0], expected, atol=1e-5)


def test_failed_large_export_leaves_no_data_file(monkeypatch, tmp_path, make_checkpoint):
    monkeypatch.setattr(onnx_export, "EMBED_LIMIT", 1024)
    _corrupt_tables(monkeypatch, 0)
    with pytest.raises(VerificationError):
        export_onnx(make_checkpoint(n_rows=300, n_cols=200), tmp_path / "big.onnx")
    assert list(tmp_path.iterdir()) == []


def test_validation_split_is_rebuilt_from_the_source_file(tmp_path):
    from mfx.config import TrainConfig
    from mfx.synthetic import planted_ratings
    from mfx.train import save_checkpoint, train

    raw, _ = planted_ratings(n_rows=50, n_cols=30, density=0.5, seed=3)
    csv = tmp_path / "ratings.csv"
    lines = [f"{r},{c},{int(y)}" for r, c, y in zip(raw.rows, raw.cols, raw.labels)]
    csv.write_text("\n".join(lines) + "\n")
    config = TrainConfig(
        arch="concat",
        dim=2,
        epochs=4,
        batch_size=64,
        lr=0.05,
        valid_fraction=0.2,
        device="cpu",
        refit=False,
    )
    checkpoint = tmp_path / "m.pt"
    save_checkpoint(checkpoint, train(str(csv), config))
    report = export_onnx(checkpoint, tmp_path / "m.onnx", precision="int8", force=True)
    figures = report.validation
    assert figures is not None and figures.ratings == round(0.2 * len(lines))
    assert "split rebuilt from" in figures.source
    from mfx.train import load_checkpoint

    assert figures.torch_accuracy == pytest.approx(
        load_checkpoint(checkpoint).metrics["valid_accuracy"], abs=1e-12
    )
    # A different file at the recorded path does not reproduce the recorded figures: skipped.
    csv.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    assert export_onnx(checkpoint, tmp_path / "m2.onnx").validation is None
    # An explicit labelled file is mapped with the checkpoint's ids.
    explicit = export_onnx(checkpoint, tmp_path / "m3.onnx", validation=csv)
    assert explicit.validation is not None
    assert explicit.validation.ratings == len(lines) // 2
    assert explicit.validation.agreement == 1.0


def test_validation_from_raw_ratings(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(n_rows=6, n_cols=4, dim=2, n_classes=3)
    rows = np.array(["user000", "user005", "nobody"])
    raw = RawRatings(rows, np.array([7, 37, 7]), np.array([0.5, 1.5, 1.0]), source="<test>")
    report = export_onnx(checkpoint, tmp_path / "m.onnx", validation=raw)
    assert report.validation is not None
    assert report.validation.ratings == 2  # the unknown row is left out
