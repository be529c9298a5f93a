"""Dense-AM capacity formulas ([KH16], [D17]) and the Amit–Gutfreund–Sompolinsky phase diagram,
each checked against a simulation or an independent computation."""
import math

import pytest
import torch
from scipy.integrate import quad

import hopfieldkit as hk
from hopfieldkit import classical as C
from hopfieldkit import theory as T


@pytest.mark.parametrize("n,N,load", [(2, 400, 0.1), (3, 60, 0.05), (3, 60, 0.1)])
def test_krotov_error_probability_matches_simulated_bit_errors(n, N, load):
    """The fraction of stored bits whose Krotov–Hopfield energy gap has the wrong sign."""
    K = int(load * N ** (n - 1))
    X = C.random_patterns(K, N, seed=n * 1000 + N)
    gaps = hk.DenseAMEnergy(X, F="poly", n=n).field_gaps(X, 1.0)
    measured = float((torch.sign(gaps) != X).double().mean())
    predicted = T.krotov_error_probability(N, K, n)
    # the formula is the Gaussian tail's leading term: within 35 % here, 40k-180k bits a point
    assert measured == pytest.approx(predicted, rel=0.35), (measured, predicted)


def test_krotov_alpha():
    assert T.krotov_alpha(2) == pytest.approx(0.146, abs=0.002)      # the classical "0.14 N"
    for n in (2, 3, 4):
        a = T.krotov_alpha(n, 0.01)
        assert T.krotov_error_probability(50, a * 50 ** (n - 1), n) == pytest.approx(0.01, rel=1e-9)
    assert T.krotov_alpha(3) < T.krotov_alpha(2)                       # (2n−3)!! grows
    with pytest.raises(ValueError, match="error"):
        T.krotov_alpha(2, 0.5)


def test_demircigil_polynomial_capacity_approaches_krotov():
    for n in (2, 3, 4):
        least = 2 * math.prod(range(2 * n - 3, 0, -2))
        assert T.demircigil_polynomial_capacity(100, n, least * 1.5) < T.krotov_capacity(100, n)
        assert T.demircigil_polynomial_capacity(100, n, least * (1 + 1e-9)) == pytest.approx(T.krotov_capacity(100, n))
    with pytest.raises(ValueError, match="c_n must exceed 2"):
        T.demircigil_polynomial_capacity(100, 3, 6.0)


def test_ags_zero_temperature_capacity_and_overlap():
    alpha_c, m = T.ags_zero_temperature()
    assert alpha_c == pytest.approx(0.1379, abs=2e-4) and m == pytest.approx(0.967, abs=1e-3)
    assert T.AGS_ALPHA_C == pytest.approx(alpha_c, abs=1e-3)


def test_ags_saddle_solves_its_equations():
    for alpha, temp, m0 in ((0.05, 0.3, 1.0), (0.1, 0.1, 1.0), (0.05, 0.3, 0.0), (0.02, 0.9, 0.0)):
        s = T.ags_saddle(alpha, temp, m0)
        assert s.converged
        sig = math.sqrt(alpha * s.r)
        # the averages by adaptive quadrature, an independent rule
        def avg(g):
            return quad(lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * g(math.tanh((s.m + sig * z) / temp)),
                        -12, 12, points=[-s.m / sig], limit=200, epsabs=1e-12)[0]
        assert s.m == pytest.approx(avg(lambda t: t), abs=1e-7)
        assert s.q == pytest.approx(avg(lambda t: t * t), abs=1e-7)
        Cq = (1 - s.q) / temp
        assert s.r == pytest.approx(s.q / (1 - Cq) ** 2, rel=1e-5)
        if m0 == 0:
            assert s.m == 0.0


def test_ags_small_load_reduces_to_curie_weiss():
    for temp in (0.3, 0.6, 0.9):
        assert T.ags_saddle(1e-6, temp).m == pytest.approx(T.curie_weiss_overlap(temp), abs=1e-3)


def test_ags_lines():
    """Retrieval exists up to α_M(T) → 0.138 as T → 0; it is the global minimum only below α_c(T),
    which ends near 0.05 (at 0.052: the SPEC value 0.051 within the line's resolution); both
    shrink to 0 as T → 1."""
    aM0, ac0 = T.ags_retrieval_load(0.002, tol=1e-4), T.ags_global_load(0.002, tol=1e-4)
    assert aM0 == pytest.approx(0.138, abs=1e-3)
    assert ac0 == pytest.approx(0.051, abs=3e-3)
    aM, ac = T.ags_retrieval_load(0.6, tol=1e-4), T.ags_global_load(0.6, tol=1e-4)
    assert 0 < ac < aM < aM0
    assert T.ags_retrieval_load(1.2) == 0.0 and T.ags_global_load(1.2) == 0.0
    # above α_M the iteration from m = 1 loses the pattern; below it keeps it
    assert T.ags_saddle(aM + 0.01, 0.6).m < 0.2 < T.ags_saddle(aM - 0.01, 0.6).m


def test_ags_paramagnet_above_Tg():
    alpha = 0.05
    Tg = T.paramagnetic_temperature(alpha)
    assert T.ags_saddle(alpha, 1.05 * Tg, 0.0).q == 0.0
    assert T.ags_saddle(alpha, 0.9 * Tg, 0.0).q > 0.0


def test_ags_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        T.ags_saddle(-0.1, 0.5)
    with pytest.raises(ValueError, match="T must be"):
        T.ags_saddle(0.1, 0.0)
    with pytest.raises(ValueError, match="m0"):
        T.ags_saddle(0.1, 0.5, m0=2.0)
