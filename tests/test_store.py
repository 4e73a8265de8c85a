"""The store's promises: trained models keyed by the call that trains them, one checked entry format (atomic,
SHA-256 inside, ``weights_only`` loading), corrupt entries rebuilt, verified entries never deleted, and two
processes at once (writers of the same entries, trainers of the same model, writers of a claims record)."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from tradeoffs import models, store, train
from tradeoffs.chapters.ch03_joint_objective import joint_risk

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEOFFS_DATA", str(tmp_path))
    monkeypatch.setenv("TRADEOFFS_RESULT_CACHE", str(tmp_path / "results"))
    return tmp_path


def tiny_data(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def build() -> nn.Module:
    return models.MLP(5, (8,), classes=3)


FIT = {"epochs": 2, "batch_size": 16, "lr": 0.1, "show_progress": False}


def fit(**changes):
    """One small cached training run; ``changes`` edits one of its arguments."""
    arguments = {"build": build, "data": tiny_data(), "objective": train.standard(), **FIT, **changes}
    return store.fitted(arguments.pop("build"), arguments.pop("data"), arguments.pop("objective"),
                        **arguments)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pt"))


# ------------------------------------------------------------------------------ keys from the call


def test_a_hit_loads_identical_weights_and_leaves_the_random_state(data_dir):
    torch.manual_seed(123)
    first = fit()
    state_after = torch.get_rng_state()
    torch.manual_seed(123)
    second = fit(show_progress=True, desc="another label")  # display arguments are not part of the key
    assert not first.hit and second.hit and same_weights(first.model, second.model)
    assert not second.model.training and torch.equal(torch.get_rng_state(), state_after)
    assert second.record["train_seconds"] == first.record["train_seconds"] > 0
    assert len(entries(store.models_dir())) == 1 and not list(store.models_dir().glob("*.ckpt"))
    assert fit(momentum=0.9, optimizer="sgd").hit  # train.fit's defaults, spelled out: the same call
    assert not fit(lr=0.05, desc="a label of its own").hit  # a miss passes the caller's label to train.fit


@pytest.mark.parametrize("change", [
    {"lr": 0.05}, {"epochs": 3}, {"milestones": (1,)}, {"seed": 1}, {"init_seed": 7}, {"batch_size": 8},
    {"objective": train.adversarial(eps=0.1, steps=2, step_size=0.05)}, {"objective": train.noise(sigma=0.1)},
    {"data": tiny_data(seed=1)}, {"build": lambda: models.MLP(5, (9,), classes=3)},
], ids=lambda change: next(iter(change)))
def test_editing_one_training_argument_misses(data_dir, change):
    reference = fit()
    other = fit(**change)
    assert not other.hit and other.entry != reference.entry
    assert len(entries(store.models_dir())) == 2


def test_an_objective_argument_and_a_warm_start_enter_the_key(data_dir):
    madry = fit(objective=train.adversarial(eps=0.1, steps=2, step_size=0.05))
    assert fit(objective=train.adversarial(eps=0.1, step_size=0.05, steps=2)).hit  # keyword order is no input
    assert not fit(objective=train.adversarial(eps=0.1, steps=3, step_size=0.05)).hit
    warm = fit(init=madry.model)
    assert not warm.hit and fit(init=madry.model).hit


def test_objectives_are_frozen_hashable_and_printable():
    madry = train.adversarial(eps=0.3, steps=40, step_size=0.01)
    assert madry == train.adversarial(eps=0.3, step_size=0.01, steps=40) and len({madry, madry}) == 1
    assert repr(madry) == ("Adversarial(eps=0.3, attack=attacks.pgd, loss=None, "
                           "options=(('step_size', 0.01), ('steps', 40)))")
    assert "Trades(beta=6.0" in repr(train.trades(beta=6.0, eps=0.3, step_size=0.01, steps=40))
    with pytest.raises(dataclasses.FrozenInstanceError):
        madry.eps = 0.1


def test_a_lambda_objective_is_refused_with_a_clear_error(data_dir):
    with pytest.raises(TypeError, match="lambda or nested function"):
        fit(objective=lambda model, x, y: model(x).sum())


# ------------------------------------------------------------------------------ integrity


def damage(entry: Path, how: str) -> None:
    raw = entry.read_bytes()
    if how == "truncate":
        entry.write_bytes(raw[: len(raw) // 2])
    elif how == "flip":
        entry.write_bytes(raw[:-10] + bytes(b ^ 0xFF for b in raw[-10:]))
    else:  # a bare torch file, as an older store wrote it, where an entry is expected
        entry.write_bytes(raw.partition(b"\n")[2])


@pytest.mark.parametrize("how", ["truncate", "flip", "no_header"])
def test_a_corrupt_model_entry_is_rebuilt_never_loaded(data_dir, monkeypatch, how):
    reference = fit()
    damage(reference.entry, how)
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k) or real_load(*a, **k))
    with pytest.warns(UserWarning, match="corrupt"):
        rebuilt = fit()
    assert not rebuilt.hit and not loads and same_weights(reference.model, rebuilt.model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit().hit  # the rebuilt entry is a clean hit, loaded with weights_only=True
    assert loads and all(k.get("weights_only") is True for k in loads)


def test_a_transient_load_failure_never_deletes_a_verified_entry(data_dir, monkeypatch):
    reference = fit()
    saved = reference.entry.read_bytes()

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
    monkeypatch.setattr(torch, "load", out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError) as raised:
        fit()
    assert "passed its SHA-256 check and is kept" in "".join(getattr(raised.value, "__notes__", []))
    assert reference.entry.read_bytes() == saved
    monkeypatch.undo()
    monkeypatch.setenv("TRADEOFFS_DATA", str(data_dir))
    assert fit().hit


def test_a_checkpoint_of_another_run_is_a_clear_error(tmp_path):
    x, y = tiny_data()
    checkpoint = tmp_path / "run.ckpt"
    train.fit(build(), x, y, train.standard(), checkpoint=checkpoint, **FIT)
    for other, what in (({"objective": train.noise(sigma=0.1)}, "objective"), ({"x": x + 0.01}, "data"),
                        ({"model": models.MLP(5, (9,), classes=3)}, "model")):
        arguments = {"model": build(), "x": x, "y": y, "objective": train.standard(), **other}
        with pytest.raises(ValueError, match=f"different training run.*{what}"):
            train.fit(arguments["model"], arguments["x"], y, arguments["objective"], checkpoint=checkpoint,
                      **FIT)


def test_entries_carry_their_checksum_and_leave_no_temporary_files(tmp_path):
    entry = tmp_path / "e.pt"
    digest = store.write_entry(entry, b"payload")
    assert entry.read_bytes().startswith(store.HEADER
                                         + digest.encode()) and store.read_entry(entry) == b"payload"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.pt"]
    assert store.read_entry(tmp_path / "missing.pt") is None
    entry.write_bytes(entry.read_bytes() + b"x")
    with pytest.raises(store.CorruptEntry):
        store.read_entry(entry)


def test_without_file_locks_the_store_says_so_once_and_still_works(data_dir, monkeypatch):
    monkeypatch.setattr(store, "fcntl", None)
    monkeypatch.setattr(store, "_warned_no_lock", False)
    with pytest.warns(UserWarning, match="no file locks"):
        first = fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit().hit and same_weights(first.model, fit().model)


def test_a_verified_result_that_fails_to_load_is_kept(data_dir, monkeypatch):
    value, hit = store.cached(data_dir / "results" / "r.pt", lambda: torch.arange(3.0))
    assert not hit
    monkeypatch.setattr(torch, "load", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("device error")))
    with pytest.raises(RuntimeError, match="device error"):
        store.cached(data_dir / "results" / "r.pt", lambda: torch.zeros(3))
    monkeypatch.undo()
    again, hit = store.cached(data_dir / "results" / "r.pt", lambda: torch.zeros(3))
    assert hit and torch.equal(again, value)


# ------------------------------------------------------------------------------ two processes at once


def run_together(tmp_path: Path, script: str, processes: int = 2, timeout: float = 240) -> list[str]:
    """Start ``processes`` copies of ``script`` that wait for one go signal, so they really run at once;
    return their outputs; fail with their error output if one fails."""
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
    """) + textwrap.dedent(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "TRADEOFFS_DATA": str(tmp_path / "data"),
           "TRADEOFFS_RESULT_CACHE": str(tmp_path / "results"), "OMP_NUM_THREADS": "1"}
    children = [subprocess.Popen([sys.executable, "-c", code, str(i)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for i in range(processes)]
    time.sleep(0.5)  # let both import torch
    go.touch()
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=timeout)
        assert child.returncode == 0, err[-3000:]
        outputs.append(out)
    return outputs


def test_concurrent_writers_of_the_same_entries_never_crash_or_corrupt(tmp_path):
    run_together(tmp_path, """
        import torch
        from pathlib import Path
        from tradeoffs import store
        me = int(sys.argv[1])
        root = Path(os.environ["TRADEOFFS_RESULT_CACHE"])
        for i in range(150):
            entry = root / f"shared-{i % 5}.pt"
            store.write_entry(entry, bytes([me]) * (1000 + 37 * i))   # the same entries, different contents
            store.read_entry(entry)                                    # raises CorruptEntry on a torn write
            value, _ = store.cached(root / f"memo-{i % 3}.pt", lambda: torch.full((100,), float(i % 3)))
            assert torch.equal(value, torch.full((100,), float(i % 3)))
    """)
    root = tmp_path / "results"
    assert len(entries(root)) == 8 and not list(root.glob("*.tmp"))
    for entry in entries(root):
        assert store.read_entry(entry) is not None  # every checksum matches


def test_two_processes_training_the_same_model_train_it_once(tmp_path):
    outputs = run_together(tmp_path, """
        import functools, torch
        from tradeoffs import models, store, train
        real_fit = train.fit

        @functools.wraps(real_fit)
        def counted(*args, **kwargs):
            with open(os.path.join(os.environ["TRADEOFFS_DATA"], "trainings"), "a") as f:
                f.write("1")
            time.sleep(1.0)  # long enough for the other process to arrive meanwhile
            return real_fit(*args, **kwargs)
        train.fit = counted
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
        result = store.fitted(lambda: models.MLP(5, (8,), classes=3), (x, y), train.standard(), epochs=2,
                              batch_size=16, lr=0.1, show_progress=False)
        print(result.hit, store.tensor_digest(*result.model.state_dict().values()))
    """)
    hits = sorted(line.split()[0] for line in outputs)
    assert hits == ["False", "True"]  # one trained, the other waited and read its entry
    assert len({line.split()[1] for line in outputs}) == 1
    assert (tmp_path / "data" / "trainings").read_text() == "1"


def test_two_processes_writing_one_claims_record_leave_valid_json(tmp_path):
    record = tmp_path / "results" / "NN_chapter.json"
    record.parent.mkdir()
    run_together(tmp_path, f"""
        import json
        from pathlib import Path
        from tradeoffs.book import claims
        path = Path({str(record)!r})
        for i in range(300):
            claims._write(path, {{"chapter": "NN_chapter", "profile": "smoke",
                                  "claims": [{{"id": f"x.{{i}}", "ours": float(i)}}] * (i % 17)}})
            claims.load_record(path)  # a torn record would raise here
    """)
    assert json.loads(record.read_text())["chapter"] == "NN_chapter"
    assert [p.name for p in record.parent.iterdir()] == [record.name]


# ------------------------------------------------------------------------------ memoized results

CALLS: list[float] = []  # the scales noisy_experiment actually computed


@store.memoized
def noisy_experiment(x: torch.Tensor, model: nn.Module, scale: float, show_progress: bool = True):
    """A memoized function that draws from the global RNG and returns what the store must round-trip."""
    CALLS.append(scale)
    with torch.no_grad():
        out = model(x) * scale + torch.randn(len(x), 1)
    right = torch.arange(8) >= 2  # a tradeoffs dataclass of bool tensors: 2 of 8 wrong, `scale` more flipped
    risks = joint_risk.Risks(clean_correct=right, adv_correct=torch.arange(8) >= 2 + int(scale))
    return {"risks": risks, "points": out,
            "array": np.arange(3.0), (0.5, 1): ["nested", (1, 2.5)],
            "numpy_scalars": [np.float64(0.5), np.int64(3), np.bool_(True)]}


@pytest.fixture
def result_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEOFFS_RESULT_CACHE", str(tmp_path / "results"))
    CALLS.clear()
    return tmp_path / "results"


def test_memoized_computes_once_and_returns_the_same_value(result_cache):
    x, model, calls = torch.rand(4, 3), nn.Linear(3, 1), CALLS
    torch.manual_seed(5)
    first = noisy_experiment(x, model, 2.0)
    state_after = torch.get_rng_state()
    torch.manual_seed(5)
    second = noisy_experiment(x, model, 2.0, show_progress=False)  # progress is not part of the key
    assert calls == [2.0] and torch.equal(torch.get_rng_state(), state_after)  # hit or miss, same caller RNG
    assert isinstance(second["risks"], joint_risk.Risks) and second["risks"].adv_correct.dtype == torch.bool
    assert (second["risks"].classification, second["risks"].adversarial) == (0.25, 0.25)
    assert all(torch.equal(getattr(second["risks"], f), getattr(first["risks"], f))
               for f in ("clean_correct", "adv_correct"))
    assert torch.equal(second["points"], first["points"]) and np.array_equal(second["array"], first["array"])
    assert second[(0.5, 1)] == ["nested", (1, 2.5)]
    assert second["numpy_scalars"] == [0.5, 3, True]                   # stored as Python numbers
    noisy_experiment(x, model, 3.0)                    # another argument
    noisy_experiment(x + 1e-3, model, 2.0)             # other data
    with torch.no_grad():
        model.weight.add_(1e-3)
    noisy_experiment(x, model, 2.0)                    # other weights
    assert calls == [2.0, 3.0, 2.0, 2.0] and len(entries(result_cache)) == 4


def test_memoized_key_covers_the_library_source(result_cache, monkeypatch):
    x, model, calls = torch.rand(4, 3), nn.Linear(3, 1), CALLS
    before = noisy_experiment(x, model, 2.0)
    monkeypatch.setattr(store, "library_digest", lambda: "edited")
    after = noisy_experiment(x, model, 2.0)
    assert calls == [2.0, 2.0]                                  # recomputed ...
    assert torch.equal(before["points"], after["points"])       # ... with the same random draws


@pytest.mark.parametrize("how", ["truncate", "flip", "no_header"])
def test_corrupt_result_entry_is_recomputed_never_loaded(result_cache, monkeypatch, how):
    x, model, calls = torch.rand(4, 3), nn.Linear(3, 1), CALLS
    reference = noisy_experiment(x, model, 2.0)
    (entry,) = entries(result_cache)
    damage(entry, how)
    loads = []  # (computations so far, keywords) at each torch.load
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append((len(calls), k)) or real_load(*a, **k))
    with pytest.warns(UserWarning, match="corrupt"):
        again = noisy_experiment(x, model, 2.0)
    assert len(calls) == 2 and torch.equal(again["points"], reference["points"])
    noisy_experiment(x, model, 2.0)
    assert len(calls) == 2 and len(loads) == 2  # the rewritten entry, read back on the miss and on the hit
    assert all(n == 2 and k.get("weights_only") is True for n, k in loads)  # the damaged one was never loaded


def test_memoized_refuses_a_result_it_cannot_read_back(result_cache):
    @store.memoized
    def returns_a_set():
        return {1, 2}
    with pytest.raises(TypeError, match="cannot store"):
        returns_a_set()
    assert not list(result_cache.glob("*.pt"))


def test_memoized_refuses_a_random_generator(result_cache):
    @store.memoized
    def draws(rng):
        return float(rng.random())
    with pytest.raises(TypeError, match="pass an integer seed"):
        draws(np.random.default_rng(0))
