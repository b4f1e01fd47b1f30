import csv
import json

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
    assert main(["plot", "losses", "--curves", str(path), "--output", str(tmp_path / "fig4")]) == 0
    path.write_text("panel,series,step\nx,y,1\n")
    with pytest.raises(ValueError, match="expected the header"):
        read_curves(path)
    assert main(["plot", "losses", "--output", str(tmp_path / "x")]) == 2


def write_run(runs, key, synthetic):
    folder = runs / key
    folder.mkdir(parents=True)
    rows = [["grad", s, step, v * (step + 1)] for step in range(4) for s, v in
            (("loss/fused", 0.7), ("loss/rgb", 0.9), ("mwam/K/rgb", 1.2), ("mwam/K/depth", 0.8),
             ("mwam/frm/rgb", 2.5e6), ("mwam/frm/depth", 4e5), ("lr", 0.01))]  # fmt: skip
    with (folder / "curves.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["panel", "series", "step", "value"], *rows])
    (runs / f"{key}.json").write_text(json.dumps({"key": key, "synthetic": synthetic}))
    return folder


@pytest.mark.parametrize("synthetic", [True, False])
def test_a_run_s_losses_k_and_frm_get_their_own_axes_and_its_provenance_labels_the_figure(
    tmp_path, monkeypatch, synthetic
):
    from reproduce import plots

    write_run(tmp_path / "runs", "0123456789abcdef", synthetic)
    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, stem: figures.append(figure) or [stem.with_suffix(".png")])
    argv = ["plot", "losses", "--run", "0123456789abcdef", "--results-dir", str(tmp_path), "--output", "x"]
    assert main(argv) == 0
    (figure,) = figures
    titles = {ax.get_title(): ax for ax in figure.axes}
    assert set(titles) == {"grad: losses", "grad: MWAM weight K (Eq. 5-6)", "grad: FRM (Eq. 4)",
                           "grad: other logged values"}  # fmt: skip
    assert titles["grad: FRM (Eq. 4)"].get_yscale() == "log" and titles["grad: losses"].get_yscale() == "linear"
    assert max(titles["grad: losses"].get_ylim()) < 10, "the FRM (1e6) must not share the losses' axis"
    labels = {line.get_label() for line in titles["grad: MWAM weight K (Eq. 5-6)"].get_lines()}
    assert labels == {"mwam/K/rgb", "mwam/K/depth"}
    assert ("synthetic data" in figure._suptitle.get_text()) is synthetic


def test_series_are_sorted_into_quantities():
    from reproduce.plots import quantity

    assert [quantity(s) for s in ("loss/fused", "rgb", "mwam/K/ir", "mwam/frm/rgb", "mwam/T/rgb", "lr")] == [
        "loss", "loss", "K", "frm", "other", "other"]  # fmt: skip
