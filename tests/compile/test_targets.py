"""Target files: strict schema, useful errors, user files."""

from __future__ import annotations

import pytest
from tlc.errors import ConfigError
from tlc.targets import builtin_targets, load_target


@pytest.mark.parametrize("name", sorted(builtin_targets()))
def test_builtin_target_is_consistent(name):
    target = load_target(name)
    assert target.name == name
    assert target.precision in target.precisions
    for precision in target.precisions:
        tol = target.tolerance(precision)
        assert 0 < tol.min_agreement <= 1 and tol.max_balanced_accuracy_drop >= 0


def test_unknown_target_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown target 'no-such-board'.*x86-cpu"):
        load_target("no-such-board")


def test_user_target_file(tmp_path):
    path = tmp_path / "my-board.toml"
    path.write_text('name = "my-board"\ndescription = "d"\nbackend = "onnxruntime"\ndevice = "cpu"\n'
                    'precision = "fp32"\nprecisions = ["fp32"]\n[tolerances.fp32]\nmin_agreement = 0.999\n')
    target = load_target(str(path))
    assert target.name == "my-board" and target.tolerance("fp32").min_agreement == 0.999


@pytest.mark.parametrize("body, message", [
    ('name = "x"\ndescription = "d"\nbackend = "onnxruntime"\ndevice = "cpu"\nprecision = "fp32"\n'
     'precisions = ["fp32"]\nworkspace = 3\n', "unknown key.*'workspace'.*valid keys"),
    ('name = "x"\ndescription = "d"\nbackend = "cuda-magic"\ndevice = "cpu"\nprecision = "fp32"\n'
     'precisions = ["fp32"]\n', "backend.*not one of"),
    ('name = "x"\ndescription = "d"\nbackend = "onnxruntime"\ndevice = "cpu"\nprecision = "int8"\n'
     'precisions = ["fp32"]\n', "default precision 'int8' is not in precisions"),
    ('name = "x"\nbackend = ', "not valid TOML"),
])
def test_bad_target_file_is_one_clear_error(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_target(str(path))


def test_missing_target_file():
    with pytest.raises(ConfigError, match="target file not found"):
        load_target("nowhere/board.toml")
