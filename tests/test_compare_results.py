"""benchmarks/compare_results.py: identical folders pass, a moved number or array fails, and the
timing and provenance fields are ignored."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compare_results  # noqa: E402


def _run(folder: Path, dice: float, seconds: float, probabilities) -> None:
    folder.mkdir(parents=True)
    metrics = {"mean": {"dice": dice}, "train_seconds": seconds, "code_hash": str(seconds),
               "machine": {"host": str(seconds)}, "history": [{"val_bce": 0.5}]}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    np.savez_compressed(folder / "predictions.npz", probabilities=probabilities)


def test_compare_results(tmp_path, capsys):
    p = np.linspace(0, 1, 12, dtype=np.float16).reshape(3, 4)
    _run(tmp_path / "a" / "r" / "seed0", 0.9, 1.0, p)
    _run(tmp_path / "b" / "r" / "seed0", 0.9, 2.0, p)  # other times, hash and machine
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "identical" in capsys.readouterr().out
    _run(tmp_path / "c" / "r" / "seed0", 0.9 + 1e-12, 1.0, p)
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "c")]) == 1
    q = p.copy()
    q[0, 0] = 0.5
    _run(tmp_path / "d" / "r" / "seed0", 0.9, 1.0, q)
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "d")]) == 1
    assert "array probabilities differs" in capsys.readouterr().out
    _run(tmp_path / "e" / "r" / "seed0", 0.9, 1.0, p)
    _run(tmp_path / "e" / "other" / "seed0", 0.9, 1.0, p)  # a run only in one folder
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "e")]) == 1
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "e"), "--subset"]) == 0


def test_a_field_added_at_its_default_is_not_a_difference():
    before = {"mean": {"dice": 0.9}, "config": {"seed": 0}}
    after = {"mean": {"dice": 0.9}, "config": {"seed": 0, "precision": "fp32"},
             "precision": "fp32"}
    assert compare_results.compare_json(before, after) == []
    bf16 = {**after, "precision": "bf16"}  # another value is a difference
    assert compare_results.compare_json(before, bf16) == ["/precision: only in after"]
    assert compare_results.compare_json(after, before) != []  # lost in after: a difference
