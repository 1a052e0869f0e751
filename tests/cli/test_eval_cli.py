"""mfx-eval: same figures through torch and ONNX, unknown ids, JSON and plots."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnx")

from mfx.cli.eval import main  # noqa: E402
from mfx.config import TrainConfig  # noqa: E402
from mfx.export import export_onnx  # noqa: E402
from mfx.synthetic import planted_ratings  # noqa: E402
from mfx.train import save_checkpoint, train  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    raw, _ = planted_ratings(n_rows=40, n_cols=30, density=0.6, seed=4)
    result = train(raw, TrainConfig(dim=4, epochs=5, lr=0.05))
    save_checkpoint(folder / "m.pt", result)
    export_onnx(folder / "m.pt", folder / "m.onnx", validation=None)
    valid = result.valid_data
    test = folder / "test.csv"
    lines = [
        f"{r},{c},{int(valid.classes.values[y])}"
        for r, c, y in zip(valid.rows, valid.cols, valid.labels)
    ]
    test.write_text("\n".join(lines) + "\n")
    unknown = folder / "unknown.csv"
    unknown.write_text("\n".join(lines[:5] + ["999,0,3", "0,777,2"]) + "\n")
    return folder


def _json(models, model, data, *extra):
    out = models / f"{model}.{data}.json"
    result = CliRunner().invoke(
        main, [str(models / model), "--data", str(models / data), "--json", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())


def test_torch_and_onnx_give_the_same_figures(models):
    torch_text, torch_doc = _json(models, "m.pt", "test.csv")
    onnx_text, onnx_doc = _json(models, "m.onnx", "test.csv")
    for key in ("n_pairs", "accuracy", "macro_f1", "confusion", "per_class", "classes"):
        assert torch_doc[key] == onnx_doc[key], key
    for key in ("log_loss", "mae_expected", "rmse_expected"):
        assert torch_doc[key] == pytest.approx(onnx_doc[key], abs=1e-6)
    assert "confusion matrix (rows: true label, columns: predicted label)" in onnx_text
    assert "MAE / RMSE of the expected value" in onnx_text


def test_unknown_ids_error_by_default(models):
    result = CliRunner().invoke(
        main, [str(models / "m.onnx"), "--data", str(models / "unknown.csv")]
    )
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {models / 'unknown.csv'}: line 6: 2 of 7 pair(s) have a row or column id not in "
        "the training data, first (999, 0), (0, 777); pass --unknown prior or --unknown drop\n"
    )


@pytest.mark.parametrize("model", ["m.pt", "m.onnx"])
def test_unknown_policies(models, model):
    _, prior = _json(models, model, "unknown.csv", "--unknown", "prior")
    assert prior["n_pairs"] == 7 and prior["n_unknown"] == 2
    _, dropped = _json(models, model, "unknown.csv", "--unknown", "drop")
    assert dropped["n_pairs"] == 5 and dropped["n_unknown"] == 2


def test_plots_for_checkpoint_and_onnx(models, tmp_path):
    pytest.importorskip("matplotlib")
    for model, expected in (
        ("m.pt", {"confusion.png", "true_vs_predicted.png", "loss.png"}),
        ("m.onnx", {"confusion.png", "true_vs_predicted.png"}),
    ):
        folder = tmp_path / model
        result = CliRunner().invoke(
            main, [str(models / model), "--data", str(models / "test.csv"), "--plots", str(folder)]
        )
        assert result.exit_code == 0, result.output
        assert {p.name for p in folder.iterdir()} == expected
        for path in folder.iterdir():
            assert path.read_bytes()[:4] == b"\x89PNG"


def test_label_outside_classes_names_line(models, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("0,0,3\n1,1,42\n")
    result = CliRunner().invoke(main, [str(models / "m.onnx"), "--data", str(bad)])
    assert result.exit_code == 2
    assert (
        result.output
        == f"Error: {bad}: line 2: label 42 is not one of the classes [1, 2, 3, 4, 5]\n"
    )


def test_plots_without_matplotlib_is_one_line(models, tmp_path):
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "matplotlib":
                    raise ImportError("no matplotlib")
        sys.meta_path.insert(0, Block())
        from mfx.cli.eval import main
        main([{str(models / "m.onnx")!r}, "--data", {str(models / "test.csv")!r},
              "--plots", {str(tmp_path / "p")!r}])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "Error: mfx-eval needs matplotlib for --plots: pip install 'mfx[plot]'\n"
    assert not (tmp_path / "p").exists()
