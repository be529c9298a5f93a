"""Multiple-instance data and the MIL example: bags as specified, every pooling ignores padding and
the order of instances, the AUC is the Mann-Whitney statistic, the study script resumes its cells."""
import importlib.util
import json
import pathlib

import pytest
import torch

from hopfieldkit import bags as B
from hopfieldkit.examples import mil_bags as M

ROOT = pathlib.Path(__file__).parents[1]


def test_mnist_bags_follow_the_protocol():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(300, 1, 28, 28, generator=g), torch.randint(10, (300,), generator=g)
    bags = B.mnist_bags(images, labels, 2000, seed=3)
    sizes = bags.mask.sum(1).float()
    assert abs(sizes.mean() - 10) < 0.15 and abs(sizes.var() - 2) < 0.3 and sizes.min() >= 1
    assert torch.equal(bags.labels.bool(), (bags.instance_labels == 9).any(1))
    assert (bags.instance_labels[~bags.mask] == -1).all() and (bags.instances[~bags.mask] == 0).all()
    assert torch.equal(B.mnist_bags(images, labels, 2000, seed=3).instances, bags.instances)      # seeded


def test_bit_pattern_bags_implant_one_signal_in_positive_bags_only():
    bags = B.bit_pattern_bags(500, num_instances=12, num_signals=3, seed=1)
    signals = B.bit_signals(3, 8)
    hits = (bags.instances.unsqueeze(2) == signals).all(-1)                     # [B, L, 3]
    assert torch.equal(hits.any(-1).sum(1), bags.labels.long())                 # exactly one in a positive bag
    assert torch.equal(hits.any(-1), bags.instance_labels >= 0)
    assert 0.4 < bags.labels.mean() < 0.6
    with pytest.raises(ValueError, match="num_signals"):
        B.bit_pattern_bags(4, num_signals=4, num_bits=2)


def test_roc_auc_is_the_mann_whitney_statistic_with_ties():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(2)
    labels = (torch.rand(200, generator=g) < 0.4).float()
    scores = (torch.randn(200, generator=g) + labels).round(decimals=1)          # many ties
    assert M.roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    with pytest.raises(ValueError, match="positive and negative"):
        M.roc_auc(scores, torch.ones(200))


@pytest.mark.parametrize("pooling", M.POOLINGS)
def test_every_pooling_ignores_padding_and_instance_order(pooling):
    torch.manual_seed(0)
    net = M.MILNet(torch.nn.Identity(), 6, pooling).eval()
    h = torch.randn(3, 7, 6)
    mask = torch.arange(7) < torch.tensor([[7], [4], [1]])
    junk = torch.where(mask.unsqueeze(-1), h, torch.full_like(h, 1e3))
    with torch.no_grad():
        out, _ = net(junk, mask)
        perm = torch.randperm(7)
        assert torch.allclose(net(junk[:, perm], mask[:, perm])[0], out, atol=1e-5)
        for b in range(3):
            n = int(mask[b].sum())
            assert torch.allclose(net(h[b:b + 1, :n], mask[b:b + 1, :n])[0], out[b:b + 1], atol=1e-5)
        _, w = net(junk, mask, weights=True)
    if pooling != "max":
        assert torch.allclose(w.sum(1), torch.ones(3)) and (w[~mask] == 0).all()


def test_the_study_script_writes_its_table_and_resumes_its_cells(tmp_path):
    spec = importlib.util.spec_from_file_location("mil_mnist_bags", ROOT / "paper_figures" / "mil_mnist_bags.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = ["--bags", "8", "--seeds", "2", "--steps", "3", "--test-bags", "20", "--poolings", "mean,hopfield",
            "--out", str(tmp_path)]
    md = mod.main(args)
    cells = [json.loads(line) for line in (tmp_path / mod.CELLS).read_text().splitlines()]
    assert len(cells) == 4 and {c["pooling"] for c in cells} == {"mean", "hopfield"}
    assert "| hopfield |" in md and "seed noise" in md and (tmp_path / "mil_mnist_bags.png").exists()
    with pytest.raises(SystemExit):                       # finished cells are never overwritten unasked
        mod.main(args)
    (tmp_path / mod.CELLS).write_text("\n".join(json.dumps(c) for c in cells[:3]) + "\n{\"cut")
    mod.main(args + ["--resume"])                        # reruns only the missing cell
    again = [json.loads(line) for line in (tmp_path / mod.CELLS).read_text().splitlines()]
    assert len(again) == 4 and again[:3] == cells[:3]
    assert again[3]["auc"] == cells[3]["auc"]              # a cell is a function of its seed


def test_mnist5k_is_parsed_once_and_every_call_gets_its_own_copy():
    from hopfieldkit.datasets import load_mnist5k

    a, ya = load_mnist5k("train")
    a[0] += 1
    ya[0] = -5
    b, yb = load_mnist5k("train")
    assert not torch.equal(a[0], b[0]) and yb[0] >= 0 and b.max() <= 1
