"""The analysis of an API result: the user's observables plotted with error bars and the exact
curves, in the format asked for; ``write_plots`` gives the figures with the paths."""

from __future__ import annotations

import numpy as np
import pytest

import jumps
from analysis.cli import main
from analysis.load import load_result
from analysis.report import analyse

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A jumpsolve result and the exactsolve result of the same problem, saved."""
    root = tmp_path_factory.mktemp("api")
    sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    arguments = (0.5 * sz + 0.2 * sx, [1.0, 0.0], np.linspace(0, 20, 11),
                 [(sx, jumps.ohmic(0.01, 5.0, temperature=0.5))], {"sz": sz, "sx:1": sx})
    jumps.jumpsolve(*arguments, ntraj=200, seeds=1,
                    options={"progress_bar": False}).save(root / "run")
    jumps.exactsolve(*arguments).save(root / "exact")
    return root


def test_observables_plot_in_each_format(saved, tmp_path):
    """--format svg (and pdf) writes observables.<format> beside the other plots."""
    assert main([str(saved / "run"), "--exact", str(saved / "exact"), "--format", "svg",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "observables.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "populations.svg").exists() and not (tmp_path / "populations.png").exists()
    assert main([str(saved / "run"), "--plots", "--format", "pdf", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "observables.pdf").read_bytes()[:4] == b"%PDF"


def test_write_plots_returns_figures(saved, tmp_path):
    """The figures come back with the paths: one panel per observable, its band and the exact
    curve (three lines: mean, exact, and the band's legend entry is a collection)."""
    from analysis.plots import write_plots

    result = load_result(saved / "run")
    analysis = analyse(result, exact_dir=saved / "exact")
    written = write_plots(analysis, tmp_path)
    assert tmp_path / "observables.png" in written
    figure = written.figures["observables"]
    panels = figure.get_axes()
    assert [axes.get_ylabel() for axes in panels] == ["⟨sz⟩", "⟨sx_1⟩"]
    exact = jumps.load(saved / "exact").expect["sz"]
    dashed = [line for line in panels[0].get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata(), exact)
    assert len(panels[0].collections) == 1   # the 1-sigma band
    with pytest.raises(jumps.ConfigError, match="--format"):
        write_plots(analysis, tmp_path, "jpeg")
