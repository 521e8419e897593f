"""lewm_ros.validation: one error format naming the field, the value and the allowed range."""
import math

import pytest

from lewm_ros.validation import check_bool, check_choice, check_int, check_number, check_positive, require


def test_require_names_field_value_and_range():
    with pytest.raises(ValueError, match=r"^cem\.horizon=0 is out of range; allowed: >= 1$"):
        require(False, 'cem.horizon', 0, '>= 1')
    require(True, 'cem.horizon', 5, '>= 1')


@pytest.mark.parametrize('value', [0, -3, True, 2.0, '3', None])
def test_check_int_rejects_non_integers_and_small_values(value):
    with pytest.raises(ValueError, match=r'^n='):
        check_int('n', value, 1)


def test_check_int_bounds():
    check_int('n', 1, 1)
    check_int('n', 10, 1, 10)
    with pytest.raises(ValueError, match=r'in \[1, 10\]'):
        check_int('n', 11, 1, 10)


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf, True, 'x', 0.0, -1.0])
def test_check_positive_rejects(value):
    with pytest.raises(ValueError, match=r'^w='):
        check_positive('w', value)


def test_check_number_interval_text():
    check_number('f', 0.0, 0.0, 1.0, exclusive_maximum=True)
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        check_number('f', 1.0, 0.0, 1.0, exclusive_maximum=True)


def test_check_bool_and_choice():
    check_bool('b', False)
    with pytest.raises(ValueError, match='true or false'):
        check_bool('b', 1)
    check_choice('backend', 'torch', ('torch', 'onnxruntime'))
    with pytest.raises(ValueError, match=r"backend='tf'.*one of \['torch', 'onnxruntime'\]"):
        check_choice('backend', 'tf', ('torch', 'onnxruntime'))
