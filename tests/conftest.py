import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def sphere_patterns(N: int, d: int, radius: float, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(N, d, generator=gen, dtype=torch.float64)
    return radius * x / x.norm(dim=-1, keepdim=True)


def simplex_patterns(N: int, r: float) -> torch.Tensor:
    """Centred regular simplex in R^N: x_iᵀx_j = −r²/(N−1) for i ≠ j, ‖x_i‖ = r."""
    X = torch.eye(N, dtype=torch.float64) - 1.0 / N
    return r * X / X.norm(dim=-1, keepdim=True)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled 8×8 digits (real images, no download), scaled to [-1, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float64) / 8.0 - 1.0
    return X, torch.tensor(d.target)


def _fake_cifar(root, hundred=False, n=20):
    """A small folder in the real python-pickle layout, so the real parsing code is what gets tested."""
    import pickle

    import numpy as np

    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    key = "fine_labels" if hundred else "labels"
    names = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: rng.integers(0, 100 if hundred else 10, n).tolist()}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    return folder


@pytest.fixture
def fake_cifar():
    """Writes a fake CIFAR-10/100 folder: ``fake_cifar(root, hundred=False, n=20)``."""
    return _fake_cifar
