"""``tlc.select``: each strategy on a real one-epoch run, checked against numbers computed here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tlc.data.pool import read_pool
from tlc.errors import ConfigError, DataError
from tlc.export.onnx_export import input_spec_for
from tlc.models.checkpoint import load_deploy_model
from tlc.models.mc_dropout import McDropoutModel
from tlc.select import select


def _pool_inputs(run_dir, pool):
    model, run = load_deploy_model(run_dir)
    spec = input_spec_for(run.img_size, run.img_size, run.input_channels, run.input_dtype)
    return model, run, read_pool(pool, spec, run.preprocessing)


def _unlabelled(pool, digits):
    """Ids and inputs of the pool items that are not copies of the run's data (the first len(pool_images))."""
    n = len(digits.pool_images)
    return pool.ids[:n], pool.inputs[:n]


def _probabilities(model, inputs):
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(inputs)), dim=-1).numpy().astype(np.float64)


@pytest.mark.parametrize("strategy", ["entropy", "margin"])
def test_uncertainty_strategies_pick_the_least_certain_predictions(digits, strategy):
    model, run, pool = _pool_inputs(digits.run, digits.pool_npz)
    ids, inputs = _unlabelled(pool, digits)
    p = _probabilities(model, inputs)
    expected = -(p * np.log(p)).sum(1) if strategy == "entropy" else 1 - np.abs(p[:, 0] - p[:, 1])
    chosen = select(digits.run, digits.pool_npz, 12, strategy)
    by_id = dict(zip(ids, expected, strict=True))
    assert np.allclose(chosen.scores, [by_id[i] for i in chosen.ids], atol=1e-5)
    assert list(chosen.scores) == sorted(chosen.scores, reverse=True)
    # nothing left behind scores higher than the last pick
    assert max(v for i, v in by_id.items() if i not in chosen.ids) <= min(chosen.scores) + 1e-5
    top = p.argmax(1)
    assert chosen.predicted == tuple(run.class_names[top[ids.index(i)]] for i in chosen.ids)
    assert np.allclose(chosen.probability, [p[ids.index(i)].max() for i in chosen.ids], atol=1e-5)


def test_mc_dropout_ranks_by_the_runs_mutual_information(digits):
    model, run, pool = _pool_inputs(digits.mc_run, digits.pool_npz)
    ids, inputs = _unlabelled(pool, digits)
    with torch.no_grad():
        info = McDropoutModel.for_run(model, run, 8, 3)(torch.from_numpy(inputs))["epistemic"].numpy()
    chosen = select(digits.mc_run, digits.pool_npz, 10, "mc-dropout", samples=8, seed=3)
    assert "the run's MC dropout 0.3" in chosen.note
    assert np.allclose(chosen.scores, np.sort(info)[::-1][:10], atol=1e-5)
    assert set(chosen.ids) <= set(ids)


def test_mc_dropout_without_dropout_in_the_run_says_so(digits):
    chosen = select(digits.run, digits.pool_npz, 10, "mc-dropout", samples=8)
    assert "trained without --mc-dropout" in chosen.note and "0.3" in chosen.note
    assert min(chosen.scores) >= 0 and max(chosen.scores) > 0
    assert list(chosen.scores) == sorted(chosen.scores, reverse=True)


def _features(model, inputs):
    with torch.no_grad():
        return model.classifier.forward_features(model.preprocess(torch.from_numpy(inputs))).numpy()


def _min_pairwise(features):
    d = np.linalg.norm(features[:, None] - features[None], axis=-1)
    return d[np.triu_indices(len(features), 1)].min()


def test_coreset_picks_are_spread_wider_than_the_most_uncertain(digits):
    model, _, pool = _pool_inputs(digits.run, digits.pool_npz)
    ids, inputs = _unlabelled(pool, digits)
    features = _features(model, inputs)
    coreset = select(digits.run, digits.pool_npz, 12, "coreset")
    entropy = select(digits.run, digits.pool_npz, 12, "entropy")
    spread = {name: _min_pairwise(features[[ids.index(i) for i in s.ids]]) for name, s in
              (("coreset", coreset), ("entropy", entropy))}
    assert spread["coreset"] > spread["entropy"]
    assert len(set(coreset.ids)) == 12


def test_hybrid_picks_uncertain_images_that_are_not_near_copies(digits):
    model, _, pool = _pool_inputs(digits.run, digits.pool_npz)
    ids, inputs = _unlabelled(pool, digits)
    p = _probabilities(model, inputs)
    scores = -(p * np.log(p)).sum(1)
    shortlist = {ids[i] for i in np.argsort(-scores)[:5 * 8]}
    hybrid = select(digits.run, digits.pool_npz, 8, "hybrid")
    entropy = select(digits.run, digits.pool_npz, 8, "entropy")
    assert set(hybrid.ids) <= shortlist and len(set(hybrid.ids)) == 8
    features = _features(model, inputs)
    picked = {s.strategy: _min_pairwise(features[[ids.index(i) for i in s.ids]]) for s in (hybrid, entropy)}
    assert picked["hybrid"] >= picked["entropy"]


@pytest.mark.parametrize("strategy", ["entropy", "margin", "mc-dropout", "coreset", "hybrid"])
def test_labelled_images_are_never_selected(digits, tmp_path, strategy):
    excluded = ["npz:images:0", "npz:images:5"]
    (tmp_path / "labelled.csv").write_text("id,label\n" + "".join(f"{i},1\n" for i in excluded))
    everything = select(digits.run, digits.pool_npz, 10_000, strategy, exclude=(tmp_path / "labelled.csv",),
                        samples=4)
    copies = {f"npz:images:{len(digits.pool_images) + i}" for i in range(10)}  # the run's own train images
    assert not (set(everything.ids) & (copies | set(excluded)))
    assert len(everything.ids) == len(digits.pool_images) - 2 and everything.excluded == 12


def test_a_pool_with_nothing_unlabelled_is_a_data_error(digits, tmp_path):
    np.savez(tmp_path / "copies.npz", images=digits.train_images[:5])
    with pytest.raises(DataError, match="labelled already"):
        select(digits.run, tmp_path / "copies.npz", 3, "entropy")


def test_bad_strategy_and_budget_are_config_errors(digits):
    with pytest.raises(ConfigError, match="valid: entropy, margin"):
        select(digits.run, digits.pool_npz, 3, "random")
    with pytest.raises(ConfigError, match="at least 1"):
        select(digits.run, digits.pool_npz, 0, "entropy")


def test_a_run_whose_data_moved_warns_and_excludes_only_what_it_is_told(digits, tmp_path):
    import json
    import shutil

    from tlc.data import DataWarning

    moved = tmp_path / "run"
    shutil.copytree(digits.run, moved)
    info = json.loads((moved / "run.json").read_text())
    info["data"]["source"] = str(tmp_path / "gone.npz")
    (moved / "run.json").write_text(json.dumps(info))
    with pytest.warns(DataWarning, match="pass them with --exclude"):
        everything = select(moved, digits.pool_npz, 10_000, "entropy")
    assert len(everything.ids) == len(digits.pool_images) + 10 and everything.excluded == 0
