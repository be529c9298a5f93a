"""The capacity harness against theory and against an independent package's measurement."""
import math

import pytest

from hopfieldkit import capacity as K
from hopfieldkit import theory as T


def test_hebb_without_corruption_recalls_as_often_as_every_bit_is_stable():
    """With no flipped bits, recall succeeds when all N bits of the pattern are stable:
    probability (1 − Φ(−1/√α))^N for large N (signal-to-noise)."""
    for P in (10, 20):
        r = K.recall_rate("hebbian", 200, P, corruption=0.0, trials=300, seed=P)
        expected = (1 - T.hebb_bit_error(P / 200)) ** 200
        assert r.rate == pytest.approx(expected, abs=3 * r.stderr + 0.05), (P, r.rate, expected)


def test_hebb_at_n100_matches_the_independent_measurement():
    """The independent classical package: N = 100, 15 % flipped bits, exact recall, 20 trials a
    point: 0.95 / 0.65 / 0.30 / 0.00 / 0.00 at P = 7 / 13 / 19 / 25 / 29."""
    reference = {7: 0.95, 13: 0.65, 19: 0.30, 25: 0.0, 29: 0.0}
    curve = K.capacity_curve("hebbian", 100, list(reference), trials=200, corruption=0.15)
    for P, rate in zip(curve.loads, curve.rates):
        assert abs(rate - reference[P]) <= 0.2, (P, rate)     # the reference's own sd is ~0.1 (n = 20)
    assert curve.protocol["corruption"] == 0.15 and curve.protocol["criterion"] == "exact"


def test_the_modern_and_exponential_memories_recall_far_beyond_the_classical_load():
    for model in ("modern", "dense-exp", "pseudo_inverse"):
        P = 30 if model == "pseudo_inverse" else 400             # α = 0.3, and α = 4
        assert K.recall_rate(model, 100, P, trials=10).rate == 1.0, model
    assert K.recall_rate("hebbian", 100, 30, trials=50).rate < 0.2


def test_largest_recalled_brackets_the_theory():
    P = K.largest_recalled("hebbian", 100, threshold=0.9, trials=100, corruption=0.0)
    assert T.hebb_capacity_all(100) - 2 <= P <= T.hebb_capacity_single(100) + 8, P


def test_the_protocol_is_checked_and_stated():
    r = K.recall_rate("dense-3", 40, 5, trials=4, dynamics="async-random", criterion="overlap", seed=3)
    assert r.protocol.model == "dense-3" and r.protocol.dynamics == "async-random" and len(r.successes) == 4
    assert r.as_dict()["criterion"] == "overlap"
    for bad, match in ((dict(model="dense-1"), "model"), (dict(dynamics="glauber"), "dynamics"),
                       (dict(corruption=0.6), "corruption"), (dict(criterion="close"), "criterion")):
        kw = dict(model="hebbian", N=20, P=2) | bad
        with pytest.raises(ValueError, match=match):
            K.recall_rate(kw.pop("model"), kw.pop("N"), kw.pop("P"), **kw)


def test_basin_radius_shrinks_with_load_and_agrees_with_its_rates():
    radii = []
    for P in (3, 8, 12):
        b = K.basin_radius("hebbian", 100, P, criterion="overlap", trials=30, seed=1)
        # the scan stops at the first corruption below the threshold; the radius is the one before it
        assert all(r >= 0.9 for r in b.rates[:-1]) and (b.rates[-1] < 0.9 or b.corruptions[-1] >= 0.475)
        assert b.radius == b.corruptions[-2] and b.protocol["criterion"] == "overlap"
        radii.append(b.radius)
    assert radii[0] >= 0.3 and radii[0] > radii[2]
    # above α_c ≈ 0.14 Hebb does not keep even the uncorrupted pattern within 0.95 overlap
    over = K.basin_radius("hebbian", 100, 25, criterion="overlap", trials=30)
    assert math.isnan(over.radius) and over.corruptions == [0.0]
    # Storkey's basins are larger than Hebb's at the same load (Storkey 1997)
    assert K.basin_radius("storkey", 100, 12, criterion="overlap", trials=30, seed=1).radius > radii[2]
    with pytest.raises(ValueError, match="corruption"):
        K.basin_radius("hebbian", 100, 3, corruption=0.1)
