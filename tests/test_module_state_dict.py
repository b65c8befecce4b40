"""Module.load_state_dict checks every name, shape and value before it assigns anything."""
import datetime

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn


def make_model():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(3, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng))


def good_state():
    return {name: np.full(value.shape, 0.5) for name, value in make_model().state_dict().items()}


def test_loads_arrays_lists_tensors_and_ints_cast_to_the_parameter_dtype():
    model, state = make_model(), good_state()
    state["layers.0.bias"] = [1, 2, 3, 4]
    state["layers.2.bias"] = tn.Tensor(np.array([True, False]))
    model.load_state_dict(state)
    assert model.layers[0].bias.data.tolist() == [1, 2, 3, 4] and model.layers[2].bias.data.tolist() == [1, 0]
    assert all(p.data.dtype == np.float32 for p in model.parameters())


BAD_VALUES = {
    "None": (None, TypeError, "got dtype object from NoneType"),
    "a string": ("weights", TypeError, "got dtype <U7 from str"),
    "strings": (np.array([["a"] * 4] * 2), TypeError, "dtype <U1"),
    "a date": (datetime.date(2024, 1, 1), TypeError, "dtype object from date"),
    "datetimes": (np.zeros(2, "datetime64[s]"), TypeError, "dtype datetime64"),
    "complex": (np.zeros(2, complex), TypeError, "dtype complex128"),
    "objects": (np.array([object(), object()]), TypeError, "dtype object"),
    "a ragged list": ([[1.0], [1.0, 2.0]], TypeError, "expected an array of real numbers, got list"),
    "a wrong shape": (np.zeros(3), ValueError, r"layers.2.bias: expected shape \(2,\), got \(3,\)"),
}


@pytest.mark.parametrize("case", BAD_VALUES, ids=list(BAD_VALUES))
def test_a_bad_value_changes_nothing(case):
    value, error, message = BAD_VALUES[case]
    model = make_model()
    before = model.state_dict()
    state = good_state()
    state["layers.2.bias"] = value  # the last parameter: all the others would be assigned first if not checked
    with pytest.raises(error, match=message):
        model.load_state_dict(state)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)


@pytest.mark.parametrize("change, message", [
    (lambda state: state.pop("layers.0.weight"), r"missing \['layers.0.weight'\], unexpected \[\]"),
    (lambda state: state.update({"extra": np.zeros(1), 7: np.zeros(1)}), r"missing \[\], unexpected \['extra', 7\]"),
], ids=["missing", "unexpected"])
def test_wrong_names_change_nothing(change, message):
    model, state = make_model(), good_state()
    before = model.state_dict()
    change(state)
    with pytest.raises(KeyError, match=message):
        model.load_state_dict(state)
    assert all(np.array_equal(array, before[name]) for name, array in model.state_dict().items())


def test_a_non_dict_is_refused():
    with pytest.raises(TypeError, match=r"expects a dict \{parameter name: array\}, got list"):
        make_model().load_state_dict([np.zeros(1)])
