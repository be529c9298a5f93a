"""Sort-of-CLEVR: the generator's answers checked against the scene, the quirks flag, and AiT on it."""
import numpy as np
import torch

from ait.data import clevr as C
from ait import data as D
from ait import train as T


def scene(seed=0):
    rng = np.random.default_rng(seed)
    return C._objects(rng)


def test_scenes_respect_the_layout_rules():
    for s in range(20):
        centres, shapes = scene(s)
        assert centres.shape == (6, 2) and ((centres >= 5) & (centres <= 69)).all()
        d = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(6) * 100
        assert d.min() >= 10
    img = C._render(*scene(1))
    assert img.shape == (75, 75, 3) and (img == 255).all(-1).mean() > 0.7  # white canvas


def test_answers_follow_their_definitions():
    centres = np.array([[10.0, 10.0], [20.0, 12.0], [60.0, 60.0], [40.0, 20.0], [30.0, 50.0], [65.0, 15.0]])
    shapes = np.array([0, 1, 0, 1, 1, 0])
    ans = lambda f, t, a, b=None, q=False: C._answer(f, t, a, b, centres, shapes, q)
    assert ans(0, 0, 1) == 3 and ans(0, 0, 0) == 2                        # shape: circle / square
    assert ans(0, 1, 0) == 0 and ans(0, 1, 2) == 1                         # left of 37.5?
    assert ans(0, 2, 0) == 0 and ans(0, 2, 2) == 1                         # top?
    assert ans(1, 0, 0) == 2 + shapes[1]                                   # closest to A is object 1
    assert ans(1, 1, 0) == 2 + shapes[2]                                   # furthest is object 2
    assert ans(1, 2, 0) == (shapes == 0).sum() + 3                         # objects with A's shape, A included
    assert ans(2, 0, 0, 2) == 3 + 4                                        # box (10,10)-(60,60): objects 1, 3, 4
    assert ans(2, 1, 0, 1) == 0                                            # object 3 near the line y ≈ 10 + 0.2(x-10)
    # the quirk: A's own squared distance 999 beats every object farther than √999 ≈ 31.6
    far = np.array([[10.0, 10.0], [60.0, 10.0], [10.0, 60.0], [60.0, 60.0], [35.0, 69.0], [69.0, 35.0]])
    assert C._answer(1, 0, 0, None, far, shapes, True) == 2 + shapes[0]    # wrongly answers A itself
    assert C._answer(1, 0, 0, None, far, shapes, False) == 3              # object 1 (a circle), at distance 50


def test_questions_encode_family_subtype_and_colours_and_the_split_is_seeded():
    rng = np.random.default_rng(0)
    img, q, a = C.generate(3, rng)
    assert img.shape == (3, 75, 75, 3) and q.shape == (3, 30, 18) and a.shape == (3, 30)
    assert (q[:, :, 12:15].argmax(-1) == np.repeat([0, 1, 2], 10)).all()
    assert (q[:, :, 0:6].sum(-1) == 1).all() and (q[:, :, 15:18].sum(-1) == 1).all()
    assert (q[:, 20:, 6:12].sum(-1) == 1).all() and (q[:, :20, 6:12].sum(-1) == 0).all()
    assert ((0 <= a) & (a <= 9)).all()
    img2, q2, a2 = C.generate(3, np.random.default_rng(0))
    assert (img == img2).all() and (q == q2).all() and (a == a2).all()
    # quirks: ternary questions never use yellow (colour 5)
    _, qq, _ = C.generate(20, np.random.default_rng(1), quirks=True)
    assert qq[:, 20:, 5].sum() == 0 and qq[:, 20:, 11].sum() == 0


def test_cache_roundtrip(tmp_path):
    path = tmp_path / "soc.npz"
    a = C.load_sort_of_clevr("test", cache=path, n_train=4, n_test=2)
    assert path.exists()
    b = C.load_sort_of_clevr("test", cache=path, n_train=4, n_test=2)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert a[0].shape == (2, 3, 75, 75) and a[0].max() <= 1.0


def test_split_and_ait_with_the_question_token(tmp_path):
    split = D.load("sort-of-clevr", "train", size=60)
    assert len(split) == 60 and split.questions.shape == (60, 18) and split.family.tolist().count(1) == 20
    x, q, y = split.batch(torch.arange(5))
    assert x.shape == (5, 3, 75, 75) and q.shape == (5, 18)
    cfg = T.TrainConfig(data="sort-of-clevr", train_size=60, test_size=60, max_steps=3, eval_every=3,
                        batch_size=8, out=str(tmp_path), device="cpu")
    last = T.train(cfg, progress=False)
    assert {"acc_nonrelational", "acc_relational", "acc_ternary"} <= set(last)


def test_question_only_chance_is_a_lookup_of_the_training_answers():
    """Answers that follow from the question alone score 1; on generated scenes the lookup scores at
    least the family's most frequent answer, (within sampling noise: the majority is counted on the test set itself)."""
    from ait.data.common import Split

    q = torch.zeros(60, 18)
    q[torch.arange(60), torch.arange(60) % 6] = 1                    # colour of A
    fam = torch.arange(60) % 3
    q[torch.arange(60), 12 + fam] = 1
    labels = (torch.arange(60) % 6) + 2 * fam                        # a function of the question
    s = Split(torch.zeros(1, 3, 75, 75), labels, q, torch.zeros(60, dtype=torch.long), fam)
    assert C.question_only_accuracy(s, s) == {"unary": 1.0, "binary": 1.0, "ternary": 1.0}
    train, test = D.load("sort-of-clevr", "train", size=3000), D.load("sort-of-clevr", "test", size=3000)
    chance = C.question_only_accuracy(train, test)
    for i, name in enumerate(C.FAMILIES):
        sel = test.family == i
        majority = torch.bincount(test.labels[sel]).max() / sel.sum()
        assert 0 < chance[name] <= 1 and chance[name] >= float(majority) - 0.05, name
    try:
        C.question_only_accuracy(Split(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)), test)
    except ValueError as exc:
        assert "train must be a question-answering split" in str(exc)
    else:
        raise AssertionError("an image-only split was accepted")
