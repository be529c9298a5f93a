"""ait.train as a user meets it: refused folders, exact resume with the saved settings, metrics after a
crash, validated inputs (nothing written when refused), weights-only checkpoints, one-line errors."""
import json
import os
import pickle

import pytest
import torch

from ait import data as D
from ait import train as T
from hopfieldkit.runs import Metrics, RunError, load_checkpoint
from hopfieldkit.settings import SettingError

SMALL = ["--data", "mnist5k", "--batch-size", "16", "--test-size", "100", "--val-size", "50"]


def run(argv):
    """main() as the command line runs it: (exit status, stderr lines)."""
    try:
        T.main(argv)
        return 0
    except SystemExit as exc:
        return exc.code


def steps(path):
    return [(r["step"], r["split"]) for r in Metrics(path / "metrics.jsonl").rows()]


def test_resume_with_the_saved_settings_equals_an_unbroken_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run([*SMALL, "--max-steps", "12", "--eval-every", "5", "--out", str(a)]) == 0
    assert run([*SMALL, "--max-steps", "12", "--eval-every", "5", "--out", str(b), "--stop-at", "7"]) == 0
    assert run(["--resume", str(b)]) == 0                       # no flags: the run's own settings
    sa, sb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert sa["step"] == sb["step"] == 12
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k   # includes the workspace memories
    assert steps(a) == steps(b) == [(5, "val"), (5, "test"), (10, "val"), (10, "test"), (12, "val"), (12, "test")]
    assert json.loads((b / "config.json").read_text())["train"]["max_steps"] == 12
    assert "resuming" in (b / "log.txt").read_text()


def test_a_resumed_run_reports_its_whole_training_time(tmp_path):
    """The final line sums the time before the checkpoint (saved in it) and after the resume."""
    import re

    b = tmp_path / "b"
    assert run([*SMALL, "--max-steps", "12", "--eval-every", "5", "--out", str(b), "--stop-at", "7"]) == 0
    before = load_checkpoint(b / "last.pt")["train_s"]
    assert before > 0
    assert run(["--resume", str(b)]) == 0
    after = load_checkpoint(b / "last.pt")["train_s"]
    done = [line for line in (b / "log.txt").read_text().splitlines() if " done: " in line][-1]
    total, to, at, since = re.search(r"(\d+) s \((\d+) s to step (\d+), (\d+) s after resuming\)", done).groups()
    assert int(at) == 7 and int(to) == round(before) and abs(int(total) - (before + int(since))) <= 1
    assert after > before
    assert T.run_time(3.0, float("nan"), 7) == "3 s since the resume at step 7 (the time before it was not recorded in that checkpoint)"
    assert T.run_time(3.0, 0.0, 0) == "3 s"


def test_the_memory_reset_counter_is_in_the_checkpoint(tmp_path):
    """reset_memory_every = 7: a run stopped at step 20 and resumed resets at the same steps."""
    base = [*SMALL, "--max-steps", "30", "--eval-every", "10", "--set", "reset_memory_every=7"]
    assert run([*base, "--out", str(tmp_path / "a")]) == 0
    assert run([*base, "--out", str(tmp_path / "b"), "--stop-at", "20"]) == 0
    assert int(load_checkpoint(tmp_path / "b" / "last.pt")["model"]["steps"]) == 20
    assert run(["--resume", str(tmp_path / "b")]) == 0
    sa, sb = (load_checkpoint(tmp_path / n / "last.pt")["model"] for n in "ab")
    assert int(sa["steps"]) == 30
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_folder_that_holds_a_run_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "4", "--eval-every", "2", "--out", str(out)]) == 0
    before = (out / "last.pt").read_bytes(), (out / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert run([*SMALL, "--max-steps", "2", "--eval-every", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and "Traceback" not in err
    assert ((out / "last.pt").read_bytes(), (out / "metrics.jsonl").read_text()) == before
    assert run([*SMALL, "--max-steps", "2", "--eval-every", "2", "--out", str(out), "--overwrite"]) == 0
    assert steps(out) == [(2, "val"), (2, "test")]


def test_resume_refuses_changed_settings_and_logs_allowed_overrides(tmp_path, capsys):
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "4", "--eval-every", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert run(["--resume", str(out), "--lr", "0.5"]) == 2
    assert "differs from the run's saved" in capsys.readouterr().err
    assert run(["--resume", str(out), "--set", "hopfield_steps=3"]) == 2
    assert run(["--resume", str(out), "--max-steps", "6"]) == 0
    assert "resume override: max_steps 4 -> 6" in capsys.readouterr().err
    conf = json.loads((out / "config.json").read_text())
    assert conf["train"]["max_steps"] == 6 and conf["resumes"][0]["overrides"] == {"max_steps": 6}
    assert steps(out)[-1] == (6, "test")
    assert run(["--resume", str(tmp_path / "nothing")]) == 2


def test_rows_past_the_checkpoint_are_dropped_and_an_early_kill_restarts(tmp_path, capsys):
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "8", "--eval-every", "2", "--out", str(out), "--stop-at", "4"]) == 0
    # a kill between the metrics append and the checkpoint rename: rows for step 6 but last.pt at 4
    m = Metrics(out / "metrics.jsonl")
    m.append({"step": 6, "split": "val", "acc": 0.0})
    m.append({"step": 6, "split": "test", "acc": 0.0})
    capsys.readouterr()
    assert run(["--resume", str(out)]) == 0
    assert "dropped 2 metrics row(s)" in capsys.readouterr().err
    assert steps(out) == [(s, sp) for s in (2, 4, 6, 8) for sp in ("val", "test")]
    # a kill before the first checkpoint: config.json only; --resume starts it from scratch
    early = tmp_path / "early"
    assert run([*SMALL, "--max-steps", "4", "--eval-every", "2", "--out", str(early)]) == 0
    (early / "last.pt").unlink()
    (early / "best.pt").unlink()
    assert run(["--resume", str(early)]) == 0
    assert "no checkpoint yet" in capsys.readouterr().err
    assert steps(early) == [(2, "val"), (2, "test"), (4, "val"), (4, "test")]


@pytest.mark.parametrize("argv, message", [
    (["--max-steps", "-1"], "max_steps: expected a value ≥ 1"),
    (["--max-steps", "0"], "max_steps: expected a value ≥ 1"),
    (["--lr", "0"], "lr: expected a value > 0"),
    (["--eval-every", "0"], "eval_every: expected a value ≥ 1"),
    (["--set", "memory=maybe"], "memory: expected true or false"),
    (["--set", "dim=64.5"], "dim: expected an integer"),
    (["--set", "reset_memory_every=yes"], "reset_memory_every: expected an integer"),
    (["--set", "hopfield_steps=abc"], "hopfield_steps: expected an integer"),
    (["--set", "nonsense=1"], "unknown setting 'nonsense'"),
    (["--set", "dim"], "--set expects KEY=VALUE"),
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "CUDA device"),
    (["--device", "toaster"], "not a torch device"),
    (["--data", "cifar10", "--data-dir", "/nonexistent"], "cifar-10-batches-py"),
    (["--data", "cifar10"], "--data-dir"),
    (["--model", "resnet"], "model: expected one of"),
    (["--set", "patch=5"], "not divisible by the patch size"),
    (["--lr", "1e-7"], "must be at least min_lr"),
])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert run([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert not out.exists(), "a refused run left a folder behind"


def test_config_files_are_parsed_to_their_types(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"max_steps": "ten"}))
    assert run(["--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "max_steps: expected an integer, got 'ten'" in capsys.readouterr().err
    yaml = tmp_path / "c.yaml"
    yaml.write_text("max_steps: 3\n")
    assert run(["--config", str(yaml), "--out", str(tmp_path / "x")]) == 2
    assert "YAML is not supported" in capsys.readouterr().err
    assert run(["--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")]) == 2
    good = tmp_path / "c.json"
    good.write_text(json.dumps({"data": "mnist5k", "max_steps": 5, "overrides": {"bottleneck": "8"}}))
    plan = T.parse_args(["--config", str(good), "--out", str(tmp_path / "y"), "--set", "beta=0.5"])
    assert plan.cfg.data == "mnist5k" and plan.cfg.max_steps == 5
    assert plan.cfg.overrides == {"bottleneck": 8, "beta": 0.5}          # parsed to the fields' types
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_file_or_unwritable_out_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert run(["--out", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert run(["--out", str(f / "sub")]) == 2
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        assert run(["--out", str(ro / "run")]) == 2
        assert "not writable" in capsys.readouterr().err


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this creates the marker file: code execution
        return (open, (self.marker, "w"))


def test_checkpoints_hold_plain_values_and_code_carrying_ones_are_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "2", "--eval-every", "2", "--out", str(out)]) == 0
    torch.load(out / "last.pt", weights_only=True)            # loads under weights_only: plain values only
    marker = tmp_path / "executed"
    torch.save({"model": _Evil(str(marker)), "step": 1}, out / "last.pt")
    with pytest.raises(RunError, match="refusing to load it"):
        load_checkpoint(out / "last.pt")
    capsys.readouterr()
    assert run(["--resume", str(out), "--max-steps", "4"]) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists(), "loading the checkpoint ran code"
    data = (out / "best.pt").read_bytes()
    (out / "last.pt").write_bytes(data[: len(data) // 2])      # truncated
    assert run(["--resume", str(out), "--max-steps", "4"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    (out / "last.pt").write_bytes(pickle.dumps({"model": 1}))  # not a torch file
    assert run(["--resume", str(out), "--max-steps", "4"]) == 2


def test_best_checkpoint_is_chosen_on_validation(tmp_path):
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "9", "--eval-every", "3", "--out", str(out)]) == 0
    rows = Metrics(out / "metrics.jsonl").rows()
    val = [r for r in rows if r["split"] == "val"]
    best = max(val, key=lambda r: (r["acc"], -r["step"]))
    assert load_checkpoint(out / "best.pt")["step"] == best["step"]
    assert load_checkpoint(out / "best.pt")["val_acc"] == pytest.approx(best["acc"])


def test_paper_preset_evaluates_full_batches_of_the_training_size(tmp_path):
    """The released code evaluates on full batches of the training batch size and writes the memory
    while it does, so the batch size and the dropped remainder change test accuracy."""
    out = tmp_path / "p"
    assert run(["--data", "mnist5k", "--preset", "paper", "--batch-size", "64", "--test-size", "100",
                "--max-steps", "3", "--eval-every", "3", "--out", str(out)]) == 0
    conf = json.loads((out / "config.json").read_text())["train"]
    assert conf["eval_batch_size"] == 64
    test = [r for r in Metrics(out / "metrics.jsonl").rows() if r["split"] == "test"][-1]
    assert test["n"] == 64                                    # 100 samples: one full batch of 64
    model = T.model_for(T.saved_config(out))
    model.load_state_dict(load_checkpoint(out / "last.pt")["model"])
    split = T.load_split(T.saved_config(out), "test")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a = T.evaluate(model, split, 64, "cpu", drop_last=True)
    model.load_state_dict(state)
    b = T.evaluate(model, split, 64, "cpu", drop_last=True)
    model.load_state_dict(state)
    c = T.evaluate(model, split, 16, "cpu", drop_last=True)
    assert a == b                                             # reproducible from the same memory
    assert c["n"] == 96 and c["loss"] != a["loss"]            # another batch size, another number


def test_eval_only_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "2", "--eval-every", "2", "--out", str(out)]) == 0
    before = sorted(p.name for p in out.iterdir())
    res = T.eval_only(T.parse_args(["--eval-only", "--out", str(out)]))
    assert sorted(p.name for p in out.iterdir()) == before
    rows = Metrics(out / "metrics.jsonl").rows()
    assert res["test"]["acc"] == pytest.approx(rows[-1]["acc"]) and res["val"]["acc"] == pytest.approx(rows[-2]["acc"])


def test_weight_decay_skips_norms_biases_embeddings_and_memories():
    model = T.model_for(T.TrainConfig(data="mnist5k", overrides={"pos_embedding": "learned"}))
    decay, rest = T.param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("weight") and p.dim() == 2 for p in decay["params"])
    undecayed = {names[id(p)] for p in rest["params"]}
    assert "embed.pos" in undecayed and any(n.endswith("bias") for n in undecayed)
    assert any("norm" in n for n in undecayed)
    assert len(decay["params"]) + len(rest["params"]) == sum(1 for p in model.parameters() if p.requires_grad)
    assert len(T.param_groups(model, 0.01, decay_all=True)) == 1


def test_help_lists_every_setting(capsys):
    with pytest.raises(SystemExit):
        T.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--set", "--resume", "--overwrite", "--eval-only", "--grad-clip", "--val-size", "--max-steps"):
        assert flag in text


@pytest.mark.slow
def test_kill_minus_nine_then_resume_equals_an_unbroken_run(tmp_path):
    """Real SIGKILLs at arbitrary moments (mid-step, mid-append, mid-checkpoint): every resume
    continues, the checkpoint is never torn, and the metrics end with one row per (step, split)."""
    import signal
    import subprocess
    import sys
    import time

    args = [*SMALL, "--max-steps", "24", "--eval-every", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}        # both runs with the same threads: the same sums
    unbroken = [sys.executable, "-m", "ait.train", *args, "--out", str(tmp_path / "a")]
    assert subprocess.run(unbroken, env=env, capture_output=True).returncode == 0
    b = tmp_path / "b"
    cmd = [sys.executable, "-m", "ait.train", *args, "--out", str(b)]
    for delay in (0.3, 1.0, 1.7):   # after the run (or its resume) has started training
        mark = (b / "log.txt").stat().st_size if (b / "log.txt").exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        t0 = time.time()
        while not ((b / "log.txt").exists() and (b / "log.txt").stat().st_size > mark) and time.time() - t0 < 60:
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (b / "last.pt").exists():
            load_checkpoint(b / "last.pt")                     # never torn
        cmd = [sys.executable, "-m", "ait.train", "--resume", str(b)]
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    sa, sb = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(b / "last.pt")
    assert sa["step"] == sb["step"] == 24
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert steps(b) == steps(tmp_path / "a")                      # no duplicated or missing rows


def test_stale_check_repeats_the_first_steps_and_names_changed_numbers(tmp_path, capsys):
    """A fresh run is current; a run whose recorded losses the code no longer gives is stale; a run
    without a fingerprint is unknown; the command's exit status says whether all are current."""
    import json
    from ait import stale

    cfg = T.TrainConfig(model="ait-tiny", data="triangle", max_steps=5, eval_every=5, batch_size=8, val_size=16,
                        test_size=16, out=str(tmp_path / "runs" / "a"), device="cpu")
    T.train(cfg, progress=False)
    fp = json.loads((tmp_path / "runs" / "a" / "fingerprint.json").read_text())
    assert fp["steps"] == 3 and len(fp["train_loss"]) == 3 and "git_revision" in fp
    assert stale.check(tmp_path / "runs" / "a").status == "current"
    assert stale.main([str(tmp_path / "runs")]) == 0
    fp["train_loss"][1] *= 1.001                      # as if the code had changed the second step
    (tmp_path / "runs" / "a" / "fingerprint.json").write_text(json.dumps(fp))
    v = stale.check(tmp_path / "runs" / "a")
    assert v.status == "stale" and v.now[0] == pytest.approx(v.recorded[0], rel=1e-6)
    (tmp_path / "runs" / "a" / "fingerprint.json").unlink()
    assert stale.check(tmp_path / "runs" / "a").status == "unknown"
    assert stale.main([str(tmp_path / "runs")]) == 1
    assert "0 current" in capsys.readouterr().out
    assert stale.main([str(tmp_path / "nothing")]) == 2


def test_a_diverged_run_stops_with_one_line_and_saves_nothing_of_it(tmp_path, capsys):
    """lr 1e30 sends the loss to NaN in the first steps: one line naming the steps, exit 2, no
    checkpoint or metrics row from those steps (the workspace skips value checks inside the step)."""
    out = tmp_path / "r"
    assert run([*SMALL, "--max-steps", "12", "--eval-every", "5", "--lr", "1e30", "--warmup-steps", "0",
                "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "training diverged" in err and "1..5" in err and "Traceback" not in err
    assert not (out / "last.pt").exists() and not (out / "metrics.jsonl").exists()


def test_one_sort_of_clevr_family_is_trained_and_evaluated_alone(tmp_path):
    """--clevr-family relational (the released code's setting): every split holds relational questions
    only, about the same images; another data set refuses the option before writing anything."""
    c = T.TrainConfig(data="sort-of-clevr", train_size=300, test_size=150, clevr_family="relational")
    for split in ("train", "val", "test"):
        s, full = T.load_split(c, split), T.load_split(T.TrainConfig(data="sort-of-clevr", train_size=300, test_size=150), split)
        assert (s.family == 1).all() and len(s) == int((full.family == 1).sum()) > 0
        assert torch.equal(s.images, full.images)
    with pytest.raises(Exception, match="clevr_family"):
        T.TrainConfig(data="mnist5k", clevr_family="relational")
    assert run(["--data", "mnist5k", "--clevr-family", "relational", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_fresh_sort_of_clevr_scenes_each_epoch_resume_exactly(tmp_path):
    """--clevr-fresh: epoch 0 trains on the fixed scenes, each later epoch on new ones that are a
    function of (seed, epoch); a run stopped inside epoch 1 and resumed equals an unbroken one."""
    from ait.data import fresh_clevr

    a1, a1b, a2 = fresh_clevr(3, 0, 1), fresh_clevr(3, 0, 1), fresh_clevr(3, 0, 2)
    assert torch.equal(a1.images, a1b.images) and torch.equal(a1.labels, a1b.labels)
    assert not torch.equal(a1.images, a2.images) and len(a1) == 90
    fixed = D.load("sort-of-clevr", "train", size=90)
    assert not torch.equal(a1.images, fixed.images[:3])
    # 90 questions (3 scenes) at batch 16: 6 steps an epoch; stop at step 8, inside epoch 1
    base = ["--data", "sort-of-clevr", "--train-size", "90", "--val-size", "1", "--test-size", "60",
            "--batch-size", "16", "--clevr-fresh", "--max-steps", "14", "--eval-every", "7"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run([*base, "--out", str(a)]) == 0
    assert run([*base, "--out", str(b), "--stop-at", "8"]) == 0
    assert run(["--resume", str(b)]) == 0
    assert run([*base, "--no-clevr-fresh", "--out", str(c)]) == 0
    sa, sb, sc = (load_checkpoint(p / "last.pt")["model"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)       # the new scenes changed the run
    assert "epoch 2: 3 new scenes" in (a / "log.txt").read_text()
    with pytest.raises(SettingError, match="clevr_fresh"):
        T.TrainConfig(data="mnist5k", clevr_fresh=True)
