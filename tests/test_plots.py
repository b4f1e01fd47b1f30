import csv

import pytest

from reproduce.cli import main
from reproduce.plots import CurvePoint, FilterPoint, plot_loss_curves, plot_metric_vs_filter, read_curves


def test_loss_curves_write_png_and_pdf(tmp_path):
    points = [
        CurvePoint(panel, series, step, 1.0 / (step + 1) + k)
        for panel in ("w/o MWAM", "Gradient")
        for k, series in enumerate(("fused", "rgb", "depth"))
        for step in range(5)
    ]
    written = plot_loss_curves(points, tmp_path / "fig4", synthetic=True)
    assert [p.suffix for p in written] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "fig4.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "fig4.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="no curve points"):
        plot_loss_curves([], tmp_path / "empty")


def test_filter_plot_and_cli(tmp_path):
    points = [FilterPoint("base", kind, k, 50 - k) for kind in ("low-pass", "high-pass") for k in (3, 5, 9)]
    assert plot_metric_vs_filter(points, tmp_path / "f", references={"base": 55.0})[0].exists()
    assert main(["plot", "filter", "--output", str(tmp_path / "fig9")]) == 0
    assert (tmp_path / "fig9.png").exists() and (tmp_path / "fig9.pdf").exists()


def test_read_curves_and_cli_losses(tmp_path):
    path = tmp_path / "curves.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["panel", "series", "step", "value"])
        writer.writerows([["grad", "rgb", 0, 1.0], ["grad", "rgb", 1, 0.5]])
    assert read_curves(path)[1] == CurvePoint("grad", "rgb", 1.0, 0.5)
    assert main(["plot", "losses", "--curves", str(path), "--output", str(tmp_path / "fig4"), "--synthetic"]) == 0
    path.write_text("panel,series,step\nx,y,1\n")
    with pytest.raises(ValueError, match="expected the header"):
        read_curves(path)
    assert main(["plot", "losses", "--output", str(tmp_path / "x")]) == 2
