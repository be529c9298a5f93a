"""Seed statistics: the summary and Welch's test agree with scipy and with their definitions."""
import math

import pytest
from scipy import stats as S

from hopfieldkit.stats import summarise, welch


def test_summary_is_mean_and_sample_sd():
    s = summarise([95.35, 97.50, 97.90])
    assert s.n == 3 and s.mean == pytest.approx(96.9167, abs=1e-4) and s.sd == pytest.approx(1.3714, abs=1e-4)
    assert str(s) == "96.92 ± 1.37 (n=3)" and str(summarise([1.0])) == "1.00 (n=1)"
    with pytest.raises(ValueError, match="finite"):
        summarise([1.0, float("nan")])
    with pytest.raises(ValueError, match="at least one"):
        summarise([])


def test_welch_matches_scipy_and_reports_seed_noise():
    a, b = [96.1, 97.0, 95.2, 98.3, 94.9], [96.7, 98.1, 95.0, 97.4, 96.2]
    w = welch(a, b)
    ref = S.ttest_ind(a, b, equal_var=False)
    assert w.t == pytest.approx(ref.statistic) and w.p == pytest.approx(ref.pvalue) and w.differs is False
    far = welch([50.0, 51.0, 49.5], [97.0, 96.0, 98.0])
    assert far.differs is True and far.p < 1e-4
    assert welch([1.0], [2.0, 3.0]).differs is None and math.isnan(welch([1.0], [2.0, 3.0]).p)
    assert welch([1.0, 1.0], [1.0, 1.0]).differs is False and welch([1.0, 1.0], [2.0, 2.0]).differs is True
    with pytest.raises(ValueError, match="alpha"):
        welch(a, b, alpha=1.5)
