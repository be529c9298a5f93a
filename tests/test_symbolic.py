"""Symbolic derivations (sympy) against the torch energies."""

from hopfieldkit import symbolic


def test_hopfield_gradient_and_fixed_point_equation_symbolically():
    sym = symbolic.hopfield_gradient(N=3, d=2)
    assert all(c.ok for c in sym.checks), [c.name for c in sym.checks if not c.ok]


def test_autodiff_gradient_equals_lambdified_symbolic_gradient():
    assert symbolic.check_autodiff_gradient(N=3, d=2, points=20) < 1e-12


def test_symbolic_check_can_fail():
    """The machinery is not vacuous: a wrong candidate leaves a non-zero residual."""
    import sympy as sp

    x = sp.Symbol("x", real=True)
    assert not symbolic._is_zero(sp.diff(sp.log(sp.exp(x) + 1), x) - sp.exp(x))
    assert symbolic._is_zero(sp.diff(sp.log(sp.exp(x) + 1), x) - sp.exp(x) / (sp.exp(x) + 1))


def test_lse_lagrangian_duality():
    checks = symbolic.lse_duality(3)
    assert all(c.ok for c in checks), [c.name for c in checks if not c.ok]


def test_layernorm_lagrangian_duality():
    checks = symbolic.layernorm_duality(2)
    assert all(c.ok for c in checks), [c.name for c in checks if not c.ok]
