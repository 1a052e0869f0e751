from __future__ import annotations

import numpy as np
import pytest

from mfx.errors import DataError
from mfx.labels import Classes, parse_classes


def test_half_stars_sorted_and_json_friendly():
    classes, index = Classes.fit(np.array([4.0, 0.5, 5.0, 4.0]))
    assert classes.to_list() == [0.5, 4, 5]
    np.testing.assert_array_equal(index, [1, 0, 2, 1])


def test_string_labels():
    classes, index = Classes.fit(np.array(["like", "dislike", "like"]))
    assert classes.to_list() == ["dislike", "like"]
    assert not classes.numeric
    np.testing.assert_array_equal(index, [1, 0, 1])


def test_explicit_classes_keep_absent_class_and_given_order():
    classes, index = Classes.fit(np.array([1.0, 3.0]), explicit=[0, 1, 2, 3, 4, 5])
    assert len(classes) == 6
    np.testing.assert_array_equal(index, [1, 3])
    reverse, index = Classes.fit(np.array(["a", "b"]), explicit=["b", "a"])
    np.testing.assert_array_equal(index, [1, 0])


def test_label_outside_explicit_classes_has_position():
    with pytest.raises(DataError, match=r"label 7 is not one of the classes \[0, 1\]") as info:
        Classes.fit(np.array([0.0, 1.0, 7.0]), explicit=[0, 1])
    assert info.value.position == 2


def test_one_class_is_refused():
    with pytest.raises(DataError, match="at least two distinct classes"):
        Classes.fit(np.array([3.0, 3.0]))


def test_parse_classes():
    assert parse_classes("0,1,2") == [0, 1, 2]
    assert parse_classes("0.5, 1") == [0.5, 1]
    assert parse_classes("dislike,like") == ["dislike", "like"]
    with pytest.raises(DataError, match="listed twice"):
        parse_classes("1,1")
