"""Data for AiT, one module per data set; nothing is downloaded.

- :mod:`ait.data.triangle`: the Triangle generator [GWS] (equilateral or not);
- :mod:`ait.data.clevr`: Sort-of-CLEVR [RN] (relational questions on generated scenes);
- :mod:`ait.data.images`: MNIST-5k and CIFAR-10/100 from a local folder (loaders in
  :mod:`hopfieldkit.datasets`), normalisation and crop/flip augmentation;
- :mod:`ait.data.common`: :class:`InputSpec` (what a model is built from), :class:`Split`.

:func:`load` returns a ``"train"``, ``"val"`` or ``"test"`` split of a data set key (:data:`SPECS`).
The validation split is held out of the training data, fixed by the seed: a seeded draw of
``val_size`` training samples (Sort-of-CLEVR: images, with all their questions), or for Triangle a
separately seeded generated set. ``val_size=None`` takes the set's default, at most a tenth of the
training set.
"""
from __future__ import annotations

import pathlib

import torch

from .common import DataSpec, InputSpec, Split, holdout
from .images import AUGMENTED, NORMALISE, augment_crop_flip
from .triangle import TRIANGLE_EPOCH, fresh_triangles, make_triangles

__all__ = ["DataSpec", "InputSpec", "Split", "SPECS", "load", "input_spec", "AUGMENTED", "NORMALISE",
           "augment_crop_flip", "make_triangles", "fresh_triangles", "TRIANGLE_EPOCH", "holdout", "fresh_clevr"]

SPECS = {
    "triangle": DataSpec("triangle", InputSpec(64, 1, 2), patch=8, val_size=1000),
    "sort-of-clevr": DataSpec("sort-of-clevr", InputSpec(75, 3, 10, question_dim=18), patch=15, val_size=200),
    "mnist5k": DataSpec("mnist5k", InputSpec(28, 1, 10), patch=4, val_size=400),
    "cifar10": DataSpec("cifar10", InputSpec(32, 3, 10), patch=4, val_size=5000),
    "cifar100": DataSpec("cifar100", InputSpec(32, 3, 100), patch=4, val_size=5000),
}
SPLITS = ("train", "val", "test")


def _spec(name: str) -> DataSpec:
    if name not in SPECS:
        raise ValueError(f"unknown data set {name!r}; choose from {sorted(SPECS)}")
    return SPECS[name]


def input_spec(name: str, image_size: int | None = None) -> InputSpec:
    """The inputs of a data set key; ``image_size`` sets the Triangle canvas (the only one that varies)."""
    spec = _spec(name).inputs
    if image_size is None or image_size == spec.image_size:
        return spec
    if name != "triangle":
        raise ValueError(f"image_size: {name} images are {spec.image_size}×{spec.image_size}; only the Triangle "
                         f"canvas can be changed, got {image_size}")
    if image_size < 16:
        raise ValueError(f"image_size: the Triangle canvas must be at least 16 px, got {image_size}")
    return InputSpec(image_size, spec.channels, spec.num_classes, spec.question_dim)


def _val_count(name: str, n_train: int, val_size: int | None) -> int:
    if val_size is None:
        return max(1, min(SPECS[name].val_size, n_train // 10))
    return val_size


def load(name: str, split: str, *, data_dir: str | None = None, size: int | None = None, seed: int = 0,
         clevr_quirks: bool = False, image_size: int | None = None, val_size: int | None = None) -> Split:
    """A split (``train``, ``val``, ``test``) of a data set key, normalised as the model expects.
    ``size`` limits the number of samples of the train / test split (generated sets are generated
    in that number; Sort-of-CLEVR counts questions, 30 per image); ``val_size`` sets the validation
    split (Sort-of-CLEVR: in images). ``image_size``: the Triangle canvas (64 as the paper)."""
    spec = _spec(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    canvas = input_spec(name, image_size).image_size
    if name == "triangle":
        if split == "val":
            return Split(*make_triangles(_val_count(name, 10 ** 9, val_size), seed=seed + 20_011, size=canvas))
        n = size or (10_000 if split == "train" else 2_000)
        return Split(*make_triangles(n, seed=seed if split == "train" else seed + 10_007, size=canvas))
    if name == "sort-of-clevr":
        return _clevr(split, data_dir, size, seed, clevr_quirks, val_size)
    if name == "mnist5k":
        from .images import mnist5k
        full = mnist5k("test" if split == "test" else "train")
    else:
        from .images import cifar
        full = cifar(name, "test" if split == "test" else "train", data_dir)
    if split == "test":
        return full.subset(size)
    tr, va = holdout(len(full), _val_count(name, len(full), val_size), seed)
    return full.take(va) if split == "val" else full.take(tr).subset(size)


def _clevr(split: str, data_dir, size, seed, quirks, val_size) -> Split:
    from .clevr import TRAIN_IMAGES, load_sort_of_clevr
    if size is None:  # the full set (9,800 train images, 200 of them held out; 200 test), cached
        root = pathlib.Path(data_dir) if data_dir else pathlib.Path.home() / ".cache" / "hopfieldkit"
        cache = root / f"sort_of_clevr_seed{seed}{'_quirks' if quirks else ''}.npz"
        n_val, kw = _val_count("sort-of-clevr", TRAIN_IMAGES, val_size), {"n_train": TRAIN_IMAGES}
    else:  # small sets are generated on the fly: size // 30 images, plus the held-out ones
        n_img = max(1, size // 30)
        n_val = val_size if val_size is not None else max(1, n_img // 9)
        cache, kw = None, {"n_train": n_img + n_val, "n_test": n_img}
    keep = None
    if split != "test":
        tr, va = holdout(kw["n_train"], n_val, seed)
        keep = va if split == "val" else tr
    return _questions_split(*load_sort_of_clevr("test" if split == "test" else "train", cache=cache, seed=seed,
                                                quirks=quirks, keep=keep, **kw))


def _questions_split(img: torch.Tensor, q: torch.Tensor, a: torch.Tensor) -> Split:
    """Scenes [n, 3, 75, 75] with their questions [n, Q, 18] and answers [n, Q] as one sample per question."""
    Q = q.shape[1]
    qf = q.reshape(-1, 18)
    return Split(img, a.reshape(-1), qf, torch.arange(len(img)).repeat_interleave(Q), qf[:, 12:15].argmax(-1))


def fresh_clevr(n_images: int, seed: int, epoch: int, quirks: bool = False) -> Split:
    """``n_images`` new Sort-of-CLEVR training scenes for ``epoch`` (≥ 1), with their 30 questions each:
    a function of (seed, epoch) alone, drawn from a generator that shares no state with the one the
    fixed train / validation / test scenes come from, so no scene is seen in two epochs."""
    from .clevr import fresh_scenes
    if epoch < 1:
        raise ValueError(f"epoch must be ≥ 1 (epoch 0 trains on the fixed training split), got {epoch}")
    return _questions_split(*fresh_scenes(n_images, seed, epoch, quirks))
