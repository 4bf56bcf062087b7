"""Theory beside simulation in link studies: closed forms, intervals, CSV columns, figure.

Expected values are computed by hand here, not taken from ``phy.theory``:
N0 = 10^(-SNR/10); AWGN biased-MMSE NMSE N0 / (1 + N0), unbiased N0; QPSK BER in
AWGN Q(sqrt(Es/N0)) (Q(sqrt(10)) = 7.827e-4); Rayleigh, perfect CSI: biased-MMSE
NMSE N0 e^N0 E1(N0) (e E1(1) = 0.59635 at 0 dB), QPSK BER (1 - sqrt(g / (1 + g))) / 2,
g = Es/N0 / 2 (0.21132 at 0 dB).
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from phy import theory
from phy.confidence import proportion_interval, ratio_interval


def q(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


E_E1_OF_1 = math.e * 0.21938393439552  # e E1(1), E1(1) from Abramowitz & Stegun table 5.1


@pytest.mark.parametrize(
    ("channel", "csi", "equalizer", "snr_db", "nmse", "ber"),
    [
        ("awgn", "perfect", "mmse", 10.0, 0.1 / 1.1, q(math.sqrt(10.0))),
        ("awgn", "perfect", "mmse", 0.0, 0.5, q(1.0)),
        ("awgn", "perfect", "lmmse", 10.0, 0.1, q(math.sqrt(10.0))),
        ("awgn", "perfect", "zf", 20.0, 0.01, q(10.0)),
        ("rayleigh", "perfect", "mmse", 0.0, E_E1_OF_1, 0.5 * (1 - math.sqrt(1 / 3))),
        ("rayleigh", "perfect", "zf", 0.0, None, 0.5 * (1 - math.sqrt(1 / 3))),
        ("rayleigh", "ls", "mmse", 0.0, None, None),
        ("tdl-a", "perfect", "mmse", 0.0, None, None),
        ("awgn", "ls", "mmse", 10.0, None, None),
    ],
)
def test_closed_forms_against_hand_values(channel, csi, equalizer, snr_db, nmse, ber):
    got_nmse = theory.feature_nmse(channel, csi, equalizer, snr_db)
    got_ber = theory.qpsk_ber(channel, csi, snr_db)
    if nmse is None:
        assert got_nmse is None
    else:
        assert float(got_nmse) == pytest.approx(nmse, rel=1e-9)
    if ber is None:
        assert got_ber is None
    else:
        assert float(got_ber) == pytest.approx(ber, rel=1e-9)


def test_rayleigh_theory_needs_mean_normalisation_and_stays_finite_at_low_snr():
    # Sionna's per-slot normalisation removes the fading: no Rayleigh closed form.
    assert theory.qpsk_ber("rayleigh", "perfect", 10.0, channel_normalization="slot") is None
    # N0 = 1000: e^N0 E1(N0) ~ 1 - 1/N0 + 2/N0^2 = 0.999002.
    assert theory.rayleigh_mmse_nmse(-30.0) == pytest.approx(0.999002, abs=1e-6)
    assert np.all(np.diff(theory.rayleigh_mmse_nmse(np.arange(-40.0, 41.0))) < 0)


def test_ratio_interval_is_a_t_interval_over_slots():
    # Slots 1, 2, 3, 4 over unit power: 2.5 +- t(0.975, 3) sqrt(5 / 12) = 2.5 +- 2.05426.
    estimate, low, high = ratio_interval([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    assert (estimate, low, high) == pytest.approx((2.5, 0.44574, 4.55426), abs=1e-5)
    assert ratio_interval([1.0, 3.0], [1.0, 1.0])[1] == 0.0  # clipped, never negative
    assert all(math.isnan(v) for v in ratio_interval([1.0], [2.0])[1:])


def test_proportion_interval_counts_fades_not_bits():
    # No errors in 1000 bits: Wilson's upper end z^2 / (n + z^2) = 3.841459 / 1003.841459.
    assert proportion_interval([0, 0], [500, 500]) == pytest.approx((0.0, 0.0, 0.0038268), abs=1e-7)
    # Two of four slots of 100 bits all wrong: the design effect of 133.3 leaves 3 effective
    # trials, and Wilson for 1.5 of 3 gives 0.5 +- 0.374666 (not +- 0.049 for 400 bits).
    p, low, high = proportion_interval([100, 0, 100, 0], [100, 100, 100, 100])
    assert (p, low, high) == pytest.approx((0.5, 0.125334, 0.874666), abs=1e-5)


def _figure_content(fig):
    """Per axes: the dashed lines' labels and the legend's texts."""
    out = []
    for ax in fig.axes:
        dashed = [ln.get_label() for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        out.append((dashed, legend))
    return out


@pytest.mark.slow
def test_link_cli_writes_theory_and_interval_columns_and_draws_them(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    import phy.study
    from phy.link_figure import link_figure
    from semfed.cli import main

    figures = []

    def keep(fig, *args, **kwargs):  # the figure semfed link saves, kept for reading back
        figures.append(fig)

    monkeypatch.setattr(plt, "close", keep)
    out = tmp_path / "study"
    argv = ["link", "--channel", "awgn,tdl-a", "--csi", "perfect", "--snr=0,10", "--samples"]
    argv += ["200", "--feature-dim", "16", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    with (out / "link.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(phy.study.COLUMNS)
    awgn = [r for r in rows if r["channel"] == "awgn"]
    assert [float(r["theory_nmse"]) for r in awgn] == pytest.approx([0.5, 0.1 / 1.1])
    assert [float(r["theory_ber_qpsk"]) for r in awgn] == pytest.approx(
        [q(1.0), q(math.sqrt(10.0))]
    )
    tdl = [r for r in rows if r["channel"] == "tdl-a"]
    assert {r["theory_nmse"] for r in tdl} == {""} and {r["theory_ber_qpsk"] for r in tdl} == {""}
    for r in rows:
        # 16 features = 8 symbols; 576 data REs carry 72 samples a slot: 200 samples, 3 slots.
        assert int(r["slots"]) == 3 and int(r["ber_slots"]) >= 3
        nmse, low, high = (
            float(r[k]) for k in ("feature_nmse", "feature_nmse_low", "feature_nmse_high")
        )
        assert low <= nmse <= high
        ber, low, high = (float(r[k]) for k in ("ber_qpsk", "ber_qpsk_low", "ber_qpsk_high"))
        assert low <= ber <= high

    assert len(figures) == 1
    drawn = _figure_content(figures[0])
    for dashed, legend in drawn:
        assert dashed == ["awgn, perfect CSI, mmse: theory"]
        assert "tdl-a, perfect CSI, mmse: simulated" in legend
        assert "awgn, perfect CSI, mmse" in legend
    # the measured points carry error bars: one errorbar container per curve and axes
    assert all(len(ax.containers) == 2 for ax in figures[0].axes)
    assert _figure_content(link_figure(rows)) == drawn  # the CSV redraws the same
    monkeypatch.undo()
    plt.close("all")


def test_plot_link_draws_theory_from_an_older_csv_without_theory_columns(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from semfed.plot import make_plots

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig, *a, **k: figures.append(fig))
    rows = ["channel,csi,equalizer,snr_db,feature_nmse,feature_nmse_db,post_eq_snr_db,ber_qpsk"]
    for channel, csi in (("awgn", "perfect"), ("rayleigh", "ls")):
        for snr in (0.0, 10.0):
            nmse = 10 ** (-snr / 10) / (1 + 10 ** (-snr / 10))
            rows.append(f"{channel},{csi},mmse,{snr},{nmse},{10 * math.log10(nmse)},{snr},0.01")
    (tmp_path / "link.csv").write_text("\n".join(rows) + "\n")
    paths = make_plots([tmp_path], tmp_path / "figs", "link")
    assert {p.suffix for p in paths} == {".png", ".pdf"}
    for dashed, legend in _figure_content(figures[0]):
        assert dashed == ["awgn, perfect CSI, mmse: theory"]
        assert "rayleigh, ls CSI, mmse: simulated" in legend
    monkeypatch.undo()
    plt.close("all")


def test_slot_sums_follow_the_packing():
    from phy.resource_grid import SlotPacking

    packing = SlotPacking(symbols_per_sample=8, num_data_res=576, samples_per_slot=72)
    assert packing.slot_sums(np.ones(200)).tolist() == [72.0, 72.0, 56.0]
    assert packing.slot_sums(np.arange(6).reshape(2, 3)).tolist() == [[3], [12]]


def test_numerology_figure_draws_nmse_and_ber_against_speed(tmp_path):
    from phy.numerology_figure import main, numerology_figure, read_rows

    path = tmp_path / "link.csv"
    fields = ["channel", "csi", "equalizer", "carrier_frequency_ghz"]
    fields += ["subcarrier_spacing_khz", "speed_kmh", "snr_db", "feature_nmse"]
    fields += ["feature_nmse_low", "feature_nmse_high", "ber_qpsk", "ber_qpsk_low", "ber_qpsk_high"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for channel in ("tdl-a", "cdl-a"):
            for scs in (15, 120):
                for speed in (0, 500):
                    for snr in (10, 30):
                        nmse = 0.01 * (1 + speed / scs)
                        writer.writerow(
                            dict(zip(fields, [channel, "perfect", "mmse", 28, scs, speed, snr,
                                              nmse, nmse / 2, nmse * 2, nmse / 10, nmse / 20,
                                              nmse / 5], strict=True))
                        )  # fmt: skip
    fig = numerology_figure(read_rows(path), 30.0)
    nmse_ax, ber_ax = fig.axes[0], fig.axes[2]  # columns: (cdl-a, 28), (tdl-a, 28)
    assert nmse_ax.get_title() == "CDL-A, 28 GHz" and nmse_ax.get_ylabel() == "feature NMSE [dB]"
    curves = {c.get_label(): c.lines[0] for c in nmse_ax.containers}
    assert sorted(curves) == ["120 kHz, perfect CSI", "15 kHz, perfect CSI"]
    line = curves["15 kHz, perfect CSI"]
    assert list(line.get_xdata()) == [0.0, 500.0]
    want = [10 * math.log10(0.01), 10 * math.log10(0.01 * (1 + 500 / 15))]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), want, rtol=1e-9)
    ber = {c.get_label(): c.lines[0] for c in ber_ax.containers}
    got = np.asarray(ber["120 kHz, perfect CSI"].get_ydata(), float)
    np.testing.assert_allclose(got, [1e-3, 1e-3 * 62 / 12])
    with pytest.raises(ValueError, match="no rows at SNR"):
        numerology_figure(read_rows(path), 20.0)
    assert main([str(path), "--snr", "10", "--out", str(tmp_path / "n.png")]) == 0
    assert (tmp_path / "n.png").read_bytes()[:4] == b"\x89PNG"
