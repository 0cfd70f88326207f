"""The shared construction checks: NaN-safe, and the message names the argument and the value."""

import math

import pytest

from keras_optreg import _validation as V

CASES = [
    (V.finite_nonnegative, 0.0, None), (V.finite_nonnegative, -1e-9, ValueError),
    (V.finite_nonnegative, math.nan, ValueError), (V.finite_nonnegative, math.inf, ValueError),
    (V.finite_positive, 1e-300, None), (V.finite_positive, 0.0, ValueError),
    (V.finite_positive, math.nan, ValueError), (V.finite_positive, "1", TypeError),
    (V.unit_interval, 0.0, None), (V.unit_interval, 0.999, None), (V.unit_interval, 1.0, ValueError),
    (V.unit_interval, math.nan, ValueError), (V.unit_interval, -0.1, ValueError), (V.unit_interval, True, TypeError),
    (V.positive_int, 1, None), (V.positive_int, 0, ValueError), (V.positive_int, 2.0, TypeError),
    (V.boolean, True, None), (V.boolean, 1, TypeError), (V.boolean, "yes", TypeError),
    (V.seed, 7, None), (V.seed, None, None), (V.seed, True, TypeError), (V.seed, 1.5, TypeError),
]


@pytest.mark.parametrize("check, value, error", CASES)
def test_validation_check_accepts_or_names_argument_and_value(check, value, error):
    if error is None:
        assert check("beta", value) == value
        return
    with pytest.raises(error) as info:
        check("beta", value)
    assert "`beta`" in str(info.value) and f"Received: beta={value!r}" in str(info.value)


def test_validation_one_of():
    assert V.one_of("mode", "skip", ("skip", "raise")) == "skip"
    with pytest.raises(ValueError, match=r"Received: mode='diagonal'"):
        V.one_of("mode", "diagonal", ("horizontal",))
