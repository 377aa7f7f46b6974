"""The numbers hard-coded in the notebooks' checks are the definitions' values.

`source/fcnets/authoring/known_values.py` computes every expected value from the formula in
plain numpy (it never imports nnkit); these tests find the literal in each
check cell and compare.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
FCNETS = HERE.parents[1] / "source" / "fcnets"
# Loaded under a name of its own: every assignment's authoring/ has a known_values.py.
_spec = importlib.util.spec_from_file_location("fcnets_known_values", FCNETS / "authoring" / "known_values.py")
known_values = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(known_values)
VALUES = known_values.values()

# (notebook, cell id, variable assigned in the cell) -> known value
ARRAYS = {
    ("01_layers", "test_affine_forward", "correct_out"): "affine_forward",
    ("01_layers", "test_relu", "correct_out"): "relu_forward",
    ("01_layers", "test_sigmoid", "correct_out"): "sigmoid_forward",
    ("01_layers", "test_leaky_relu", "correct_out"): "leaky_relu_forward",
    ("02_two_layer_net", "test_two_layer_loss", "correct_scores"): "two_layer_scores",
    ("04_fully_connected_nets", "test_sgd_momentum", "expected_next_w"): "sgd_momentum_w",
    ("04_fully_connected_nets", "test_sgd_momentum", "expected_velocity"): "sgd_momentum_v",
    ("04_fully_connected_nets", "test_rmsprop", "expected_next_w"): "rmsprop_w",
    ("04_fully_connected_nets", "test_rmsprop", "expected_cache"): "rmsprop_cache",
    ("04_fully_connected_nets", "test_adam", "expected_next_w"): "adam_w",
    ("04_fully_connected_nets", "test_adam", "expected_v"): "adam_v",
    ("04_fully_connected_nets", "test_adam", "expected_m"): "adam_m",
}
# (notebook, cell id) -> known scalars that must appear as literals in the cell
SCALARS = {
    ("01_layers", "test_svm_loss"): ["svm_loss"],
    ("01_layers", "test_softmax_loss"): ["softmax_loss"],
    ("02_two_layer_net", "test_two_layer_loss"): ["two_layer_loss", "two_layer_loss_reg1"],
    ("03_features", "test_linear_svm_loss"): ["linear_svm_loss"],
    ("03_features", "test_linear_softmax_loss"): ["linear_softmax_loss"],
    ("04_fully_connected_nets", "test_fc_init_loss"): ["fc_loss", "fc_loss_reg"],
}


def _cell(notebook: str, cell_id: str) -> ast.Module:
    nb = nbformat.read(FCNETS / f"{notebook}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return ast.parse(cell.source)
    pytest.fail(f"{notebook}: no cell {cell_id}")


@pytest.mark.parametrize("where", sorted(ARRAYS), ids=lambda w: f"{w[0]}:{w[2]}@{w[1]}")
def test_array_literal_matches_definition(where):
    notebook, cell_id, var = where
    tree = _cell(notebook, cell_id)
    found = [n.value for n in ast.walk(tree)
             if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == var for t in n.targets)]
    assert found, f"{notebook}/{cell_id}: no assignment to {var}"
    literal = eval(compile(ast.Expression(found[0]), "<cell>", "eval"), {"np": np})  # a literal np.array([...])
    expected = VALUES[ARRAYS[where]]
    assert literal.shape == expected.shape
    np.testing.assert_allclose(literal, expected, rtol=1e-8, atol=5e-9)


@pytest.mark.parametrize("where", sorted(SCALARS), ids=lambda w: f"{w[0]}:{w[1]}")
def test_scalar_literals_match_definition(where):
    tree = _cell(*where)
    floats = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
    for key in SCALARS[where]:
        v = VALUES[key]
        assert any(abs(c - v) <= 1e-11 * max(1.0, abs(v)) for c in floats), (
            f"{where}: the expected {key} = {v!r} is not written in the cell")


def test_known_values_agree_with_cs231n_published_numbers():
    """Cross-check the definitions against the numbers CS231n's notebooks print."""
    np.testing.assert_allclose(VALUES["affine_forward"][0], [1.49834967, 1.70660132, 1.91485297], rtol=1e-8)
    assert abs(VALUES["two_layer_loss"] - 3.4702243556) < 1e-10
    assert abs(VALUES["two_layer_loss_reg1"] - 26.5948426952) < 1e-10
    assert abs(VALUES["rmsprop_w"][0, 0] - -0.39223849) < 1e-8
    assert abs(VALUES["adam_w"][0, 0] - -0.40094747) < 1e-8
    assert abs(VALUES["sgd_momentum_w"][-1, -1] - 1.4096) < 1e-12
