"""The verifiers: what passes, what fails, and what the message says."""
import numpy as np

from autograder.trusted import runner
from autograder.trusted.compare import Outcome, any_of, dict_arrays, same_array, same_scalar, unchanged_inputs


def outcome(**values):
    """An Outcome built the way both sides build theirs (runner.describe on every value)."""
    flat, keys = runner.flatten_outputs(values)
    infos, arrays = {}, {}
    for name, v in flat.items():
        infos[name], a = runner.describe(v)
        if a is not None:
            arrays[name] = a
    return Outcome("ok", None, infos, arrays, keys, [])


class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool)


REF = np.array([[1.0, -2.0], [3.0, 4.0]])


def test_equal_within_tolerance_passes_and_a_wrong_value_fails_with_both_numbers():
    v = same_array("out")
    assert v(outcome(out=REF), outcome(out=REF + 1e-12)) is None
    bad = REF.copy()
    bad[1, 0] = 3.5
    msg = v(outcome(out=REF), outcome(out=bad))
    assert "index (1, 0)" in msg and "expected 3" in msg and "got 3.5" in msg


def test_subclass_list_none_int_and_shape_are_refused():
    v = same_array("out")
    assert "subclass" in v(outcome(out=REF), outcome(out=REF.view(AlwaysEqual)))
    assert "numpy.ndarray" in v(outcome(out=REF), outcome(out=REF.tolist()))
    assert "is None" in v(outcome(out=REF), outcome(out=None))
    assert "floats" in v(outcome(out=REF), outcome(out=REF.astype(np.int64)))
    assert "shape (4,)" in v(outcome(out=REF), outcome(out=REF.ravel()))


def test_a_1_by_m_bias_gradient_is_named():
    msg = same_array("db")(outcome(db=np.ones(3)), outcome(db=np.ones((1, 3))))
    assert "(1, M)" in msg


def test_nan_where_finite_expected_points_at_overflow():
    got = REF.copy()
    got[0, 1] = np.nan
    msg = same_array("out")(outcome(out=REF), outcome(out=got))
    assert "non-finite" in msg and "overflow" in msg


def test_a_constant_factor_is_reported():
    msg = same_array("out")(outcome(out=REF), outcome(out=2 * REF))
    assert "2 times" in msg


def test_scalar_checks_reject_arrays_and_report_the_ratio():
    v = same_scalar("loss")
    assert v(outcome(loss=2.5), outcome(loss=np.float64(2.5))) is None
    assert "single number" in v(outcome(loss=2.5), outcome(loss=np.array([2.5])))
    assert "got/expected = 2" in v(outcome(loss=2.5), outcome(loss=5.0))
    assert "finite" in v(outcome(loss=2.5), outcome(loss=float("nan")))


def test_dict_keys_and_accepted_variants():
    ref = outcome(grads={"W1": REF, "b1": np.zeros(2)})
    assert "missing ['b1']" in dict_arrays("grads")(ref, outcome(grads={"W1": REF}))
    variant = any_of(same_array("out"), same_array("out", ref_name="alt.out"))
    ref2 = outcome(out=REF)
    ref2.arrays["alt.out"] = REF + 1.0
    assert variant(ref2, outcome(out=REF + 1.0)) is None
    assert variant(ref2, outcome(out=REF + 2.0)) is not None


def test_modified_inputs_are_reported():
    got = outcome(out=REF)
    got.mutated = ["x"]
    assert "modified in place" in unchanged_inputs()(outcome(out=REF), got)
