"""Chapter 7's second registration: its file, its fingerprint, its runs and its analysis
(topobook.study.branched_analysis, the study's part of topobook.study.branched_study)."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from topobook.study import branched_analysis as ba
from topobook.study import branched_study as bs
from topobook.study import confirmatory as cs
from topobook.study import stats

PRIORS = ("topo_loss", "betti_matching")


def _scores(delta_v, delta_t, n=6, noise=0.002, seed=0):
    """Synthetic study scores: per fold and seed a baseline and each prior shifted by the
    deltas, with the columns the registration's endpoints name."""
    spec = bs.load_registration()
    rng = np.random.default_rng(seed)
    rows = []
    for fold in spec["folds"]:
        for s in range(n):
            base = {"v_rand": 0.94 + rng.normal(0, 0.01), "betti_8conn_thinned": 1.3}
            rows.append({"fold": fold, "arm": "baseline", "seed": s, **base})
            for prior in PRIORS:
                rows.append({"fold": fold, "arm": prior, "seed": s,
                             "v_rand": base["v_rand"] + delta_v + rng.normal(0, noise),
                             "betti_8conn_thinned": base["betti_8conn_thinned"] + delta_t
                             + rng.normal(0, 0.02)})
    frame = pd.DataFrame(rows)
    for endpoint in spec["endpoints"]["secondary"]:  # a secondary: the V_rand plus noise
        frame[endpoint] = frame["v_rand"] + rng.normal(0, 0.001, len(frame))
    return frame


def test_the_committed_registration_is_consistent():
    spec = bs.load_registration()
    record = bs.load_registration_record()
    assert spec["branch_epoch"] == bs.BRANCH_EPOCH and spec["recipe"] == bs.RECIPE
    assert set(spec["arms"]) == {"baseline", *PRIORS}
    assert spec["endpoints"]["reading"] in bs.READINGS
    assert set(spec["endpoints"]["primary"]) == {"v_rand", "betti_8conn_thinned"}
    assert spec["analysis"]["gate"] == "serial"
    assert spec["pilot"]["chosen"] == {p: spec["arms"][p]["lam"] for p in PRIORS}
    # definitions, not training: the registered planning SDs power the registered margins with
    # the registered seeds (paired test and TOST, Holm over the family of 4)
    per_fold = int(spec["seeds"]["per_fold"])
    for endpoint, info in spec["endpoints"]["primary"].items():
        sd = float(spec["power"]["planning_sd"][endpoint])
        assert stats.seeds_for_power(sd, info["margin"], 0.8, folds=2, family_size=4) <= per_fold
        assert stats.tost_seeds_for_power(sd, info["margin"], 0.8, folds=2,
                                          family_size=4) <= per_fold
        # the budget cannot power the substantive margin: the registered one is the smallest
        # that the registered seeds power, on the registered grid, and no smaller than it
        step = float(spec["power"]["registered_margin_step"][endpoint])
        assert cs.smallest_margin(sd, per_fold, step) == pytest.approx(info["margin"])
        assert info["margin"] >= float(spec["power"]["substantive_margin"][endpoint])
    assert spec["power"]["substantive_margin"]["v_rand"] <= 0.015  # the bound
    # the record holds the registration's fingerprint, and the files have not changed since
    fingerprint = ba.check_fingerprint(record)
    assert fingerprint["registration"] == record["sha256"]["registration"]
    assert record["pilot"]["trivial_margin"] >= 0.2  # the criterion that justified the endpoint


def test_a_changed_registration_or_analysis_stops_the_check():
    record = bs.load_registration_record()
    for key in ("registration", "analysis"):
        changed = json.loads(json.dumps(record, default=str))
        changed["sha256"][key] = "0" * 64
        with pytest.raises(RuntimeError, match=f"the {key} SHA-256 is"):
            ba.check_fingerprint(changed)


def test_study_runs_carry_the_registration_and_branch_from_their_trunks(tmp_path):
    spec = bs.load_registration()
    runs = bs.study_runs(tmp_path, spec, per_fold=2, overrides={"epochs": 4, "average_epochs": 1})
    assert len(runs) == 2 * 2 * len(spec["arms"])
    sha = ba.registration_sha256()
    assert all(config.registration_sha256 == sha for _, config in runs)
    seen_trunks = set()
    for out_dir, config in runs:
        fold, arm, seed = out_dir.parts[-3], out_dir.parts[-2], out_dir.parts[-1]
        assert out_dir.parent.parent.parent == tmp_path / bs.FOLDER / "study"
        assert config.train_slices == bs.FOLDS[fold]["train_slices"]
        if arm == "baseline":
            seen_trunks.add((fold, seed))
            assert config.trunk_epochs == (3,)  # min(branch epoch, epochs - 1)
        else:
            assert (fold, seed) in seen_trunks  # its trunk comes first
            assert config.lam == spec["arms"][arm]["lam"] and config.topo_start_epoch == 3
    seeds = bs.study_seeds(spec)
    assert seeds["A"][0] == spec["seeds"]["first"]
    assert seeds["B"][0] == spec["seeds"]["first"] + spec["seeds"]["fold_stride"]
    with pytest.raises(ValueError, match="seeds per fold"):
        bs.study_seeds(spec, 0)
    with pytest.raises(ValueError, match="branches at epoch"):
        bs.study_runs(tmp_path, {**spec, "branch_epoch": 20})


def test_the_analysis_reads_no_run_of_another_registration(tmp_path):
    spec = bs.load_registration()
    runs = bs.study_runs(tmp_path, spec, per_fold=1)
    out_dir, config = runs[0]
    out_dir.mkdir(parents=True)
    reading = {"threshold": 0.5, "mean": {"v_rand": 0.9}}
    record = {"config": {**dataclasses.asdict(config), "registration_sha256": "a" * 64},
              "at_best_threshold": reading, "at_operating_point": reading}
    (out_dir / "metrics.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="not a run of this registration"):
        ba.study_scores([(out_dir, config)], spec)


def test_primary_analysis_is_the_registered_test():
    spec = bs.load_registration()
    scores = _scores(0.03, -0.3)
    primary = ba.primary_analysis(scores, spec)
    main = primary[primary["fold"] == "all"]
    assert len(main) == 4 and main["rejected"].all()
    row = main[(main["prior"] == "topo_loss") & (main["endpoint"] == "betti_8conn_thinned")].iloc[0]
    assert row["delta"] < 0 and row["improvement"] > 0  # fewer errors is better
    assert row["margin"] == spec["endpoints"]["primary"]["betti_8conn_thinned"]["margin"]
    assert "helps" in ba.answer(primary)["topo_loss"]


def test_the_serial_gate_opens_only_when_every_primary_is_rejected():
    spec = bs.load_registration()
    strong = _scores(0.03, -0.3)
    primary = ba.primary_analysis(strong, spec)
    assert ba.gate_open(primary)
    secondary = ba.secondary_analysis(strong, spec, primary)
    family = len(PRIORS) * len(spec["endpoints"]["secondary"])
    assert len(secondary) == family  # one family: both priors' secondaries together
    assert np.allclose(secondary["p_holm"], stats.holm(secondary["p"].to_numpy()))
    # one prior without an effect: its primaries are not rejected, and the gate stays shut for
    # both priors (the first registration's gate would have opened for the other one)
    mixed = strong.copy()
    topo = mixed["arm"] == "topo_loss"
    base = mixed[mixed["arm"] == "baseline"].set_index(["fold", "seed"])
    for column in ("v_rand", "betti_8conn_thinned"):
        own = base.loc[list(zip(mixed.loc[topo, "fold"], mixed.loc[topo, "seed"], strict=True)),
                       column].to_numpy()
        mixed.loc[topo, column] = own + np.random.default_rng(1).normal(0, 0.01, topo.sum())
    primary_mixed = ba.primary_analysis(mixed, spec)
    assert not ba.gate_open(primary_mixed)
    assert ba.secondary_analysis(mixed, spec, primary_mixed).empty


def test_the_committed_outcome_is_the_registered_analysis_of_its_runs():
    # the record's numbers are data (one machine's runs); what is checked is that they are the
    # registered analysis' own: its answer follows from its rows by the registered rules
    spec = bs.load_registration()
    outcome = bs.load_registration_outcome()
    primary = bs.outcome_primary(outcome)
    main = primary[primary["fold"] == "all"]
    assert set(zip(main["prior"], main["endpoint"], strict=True)) == {
        (p, e) for p in PRIORS for e in spec["endpoints"]["primary"]}
    assert outcome["runs"] == 2 * spec["seeds"]["per_fold"] * len(spec["arms"])
    assert set(main["n"]) == {outcome["pairs"]} == {2 * spec["seeds"]["per_fold"]}
    assert np.allclose(stats.holm(main["p"].to_numpy(dtype=float)), main["p_holm"].astype(float))
    for row in main.itertuples():
        assert row.margin == spec["endpoints"]["primary"][row.endpoint]["margin"]
        assert row.rejected == (row.p_holm <= spec["analysis"]["alpha"])
        assert row.low <= row.delta <= row.high
    for prior, verdict in ba.answer(primary).items():
        rows = main[main["prior"] == prior]
        if not rows["rejected"].astype(bool).any() and rows["equivalent"].astype(bool).all():
            assert verdict.startswith("no effect larger than the margins")
    gate = ba.gate_open(primary.assign(rejected=primary["rejected"].astype(object)))
    assert gate == isinstance(outcome["secondary"], list)
