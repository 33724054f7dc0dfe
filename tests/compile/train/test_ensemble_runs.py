"""Ensemble runs: ``combine_runs`` (tlc ensemble) and ``train --members N`` write one self-contained run."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def second_run(tmp_path_factory, digits04, tiny_config):
    """A second tiny run on the same data with another seed."""
    from tlc.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "seed1"
    train(digits04, run_dir, dataclasses.replace(tiny_config, seed=1), progress=False)
    return run_dir


def test_combined_runs_give_one_model_of_the_copied_members(tiny_run, second_run, tmp_path):
    from tlc.models.checkpoint import load_deploy_model
    from tlc.train.ensemble import combine_runs

    first, _ = tiny_run
    copies = [shutil.copytree(d, tmp_path / f"copy{i}") for i, d in enumerate((first, second_run))]
    info = combine_runs(copies, tmp_path / "ens")
    for copy in copies:  # the ensemble run needs nothing outside itself
        shutil.rmtree(copy)
    assert info.arch == "ensemble" and len(info.members) == 2
    stored = json.loads((tmp_path / "ens" / "run.json").read_text())
    assert [m["path"] for m in stored["members"]] == ["members/0", "members/1"]
    assert set(stored["members"][0]["sha256"]) == {"run.json", "model.safetensors"}
    model, loaded = load_deploy_model(tmp_path / "ens")
    assert loaded.is_ensemble and loaded.class_names == info.class_names
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8))
    with torch.no_grad():
        probs = [torch.softmax(load_deploy_model(d)[0](x), 1) for d in (first, second_run)]
        torch.testing.assert_close(model(x)["logits"], torch.log((probs[0] + probs[1]) / 2), rtol=1e-4, atol=1e-5)


def test_an_edited_member_is_refused_on_load(tiny_run, second_run, tmp_path):
    from tlc.models.checkpoint import load_deploy_model
    from tlc.train.ensemble import combine_runs

    combine_runs([tiny_run[0], second_run], tmp_path / "ens")
    weights = tmp_path / "ens" / "members" / "1" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ConfigError, match="members/1/model.safetensors does not match its sha256"):
        load_deploy_model(tmp_path / "ens")


def test_mismatched_runs_are_refused_with_one_line(tiny_run, second_run, tmp_path):
    from tlc.runs import read_run_info, write_run_info
    from tlc.train.ensemble import combine_runs

    with pytest.raises(ConfigError, match="at least 2"):
        combine_runs([second_run], tmp_path / "one")
    other = tmp_path / "other"
    shutil.copytree(second_run, other)
    info = read_run_info(other)
    write_run_info(other, dataclasses.replace(info, class_names=tuple(reversed(info.class_names))))
    with pytest.raises(ConfigError, match="class names") as exc:
        combine_runs([tiny_run[0], other], tmp_path / "ens")
    assert "\n" not in str(exc.value)
    write_run_info(other, dataclasses.replace(info, img_size=32))
    with pytest.raises(ConfigError, match="input"):
        combine_runs([tiny_run[0], other], tmp_path / "ens")
    assert not (tmp_path / "ens").exists()


def test_cli_ensemble_and_train_members(tiny_run, second_run, tmp_path, capsys):
    from tlc.cli.main import run
    from tlc.runs import read_run_info

    assert run(["ensemble", str(tiny_run[0]), str(second_run), "--out", str(tmp_path / "ens")]) == 0
    assert read_run_info(tmp_path / "ens").is_ensemble
    assert run(["ensemble", str(tiny_run[0]), "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.strip().startswith("Error: ")

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    sizes = (("train", 8), ("val", 4), ("test", 4))
    np.savez(path, **{f"{s}_images": rng.integers(0, 256, (n, 16, 16)).astype(np.uint8) for s, n in sizes},
             **{f"{s}_labels": np.arange(n) % 2 for s, n in sizes})
    common = ["--arch", "resnet18", "--img-size", "16", "--epochs", "1", "--batch-size", "4"]
    assert run(["train", str(path), "--out", str(tmp_path / "m"), *common, "--seed", "3", "--members", "2"]) == 0
    info = read_run_info(tmp_path / "m")
    assert [read_run_info(tmp_path / "m" / m.path).seed for m in info.members] == [3, 4]
    assert info.seed == 3


def test_an_ensemble_run_is_no_starting_point_for_training(tiny_run, second_run, tmp_path, digits04, tiny_config):
    from tlc.errors import WeightsError
    from tlc.models.checkpoint import load_run_model
    from tlc.train import train
    from tlc.train.ensemble import combine_runs

    combine_runs([tiny_run[0], second_run], tmp_path / "ens")
    with pytest.raises(WeightsError, match="is an ensemble run; start from one of its members"):
        train(digits04, tmp_path / "child", dataclasses.replace(tiny_config, arch=None, weights=str(tmp_path / "ens")),
              progress=False)
    with pytest.raises(ConfigError, match="is an ensemble of 2 runs"):
        load_run_model(tmp_path / "ens")


def test_train_members_refuses_fewer_than_two_and_resume(digits04, tiny_config, tmp_path):
    from tlc.train.ensemble import train_members

    with pytest.raises(ConfigError, match="at least 2"):
        train_members(digits04, tmp_path / "m", tiny_config, 1, progress=False)
    with pytest.raises(ConfigError, match="--resume does not apply"):
        train_members(digits04, tmp_path / "m", dataclasses.replace(tiny_config, resume=True), 2, progress=False)
    assert not (tmp_path / "m").exists()
