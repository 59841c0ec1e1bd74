"""The digits' training-set options: `train_size` keeps fewer training rows and `label_noise`
flips a share of their labels, both drawn with split_seed; the test set stays the clean one."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine.datasets import BUILTIN_DATASETS, load_builtin
from service.engine.errors import SpecError

N_CLASSES = 10


def _row_index(x_all: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The position in x_all of each row of x (rows of x_all are looked up by their bytes)."""
    positions = {row.tobytes(): i for i, row in enumerate(x_all)}
    return np.array([positions[row.tobytes()] for row in x])


def test_the_defaults_change_nothing() -> None:
    plain = load_builtin("digits", split_seed=4)
    explicit = load_builtin("digits", split_seed=4, train_size=None, label_noise=0.0)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(plain, field), getattr(explicit, field))


def test_train_size_keeps_that_many_of_the_splits_training_rows_and_the_test_set() -> None:
    full = load_builtin("digits", split_seed=2)
    small = load_builtin("digits", split_seed=2, train_size=150)
    assert small.x_train.shape == (150, 64) and small.y_train.shape == (150,)
    np.testing.assert_array_equal(small.x_test, full.x_test)
    np.testing.assert_array_equal(small.y_test, full.y_test)
    # Duplicate images exist in digits, so compare (image, label) pairs as multisets.
    full_pairs = {(x.tobytes(), int(y)) for x, y in zip(full.x_train, full.y_train, strict=True)}
    assert all((x.tobytes(), int(y)) in full_pairs
               for x, y in zip(small.x_train, small.y_train, strict=True))
    assert len(np.unique(small.y_train)) == N_CLASSES  # 150 random rows cover every digit


def test_label_noise_flips_exactly_its_share_of_training_labels_to_other_classes() -> None:
    clean = load_builtin("digits", split_seed=1, train_size=150)
    noisy = load_builtin("digits", split_seed=1, train_size=150, label_noise=0.2)
    np.testing.assert_array_equal(noisy.x_train, clean.x_train)
    flipped = noisy.y_train != clean.y_train
    assert flipped.sum() == 30  # round(0.2 * 150); a flip never lands on the same class
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() < N_CLASSES
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)
    np.testing.assert_array_equal(noisy.x_test, clean.x_test)


def test_flipped_labels_go_to_the_other_classes_uniformly() -> None:
    clean = load_builtin("digits")
    noisy = load_builtin("digits", label_noise=1.0)
    assert np.all(noisy.y_train != clean.y_train)
    shifts = (noisy.y_train - clean.y_train) % N_CLASSES  # 1..9 each with probability 1/9
    counts = np.bincount(shifts, minlength=N_CLASSES)
    assert counts[0] == 0
    expected = len(shifts) / (N_CLASSES - 1)
    chi_square = float(((counts[1:] - expected) ** 2 / expected).sum())
    assert chi_square < 27.9  # the 0.999 quantile of chi-square with 8 degrees of freedom


def test_the_same_seed_gives_bit_identical_arrays_and_another_seed_other_rows() -> None:
    first = load_builtin("digits", split_seed=7, train_size=150, label_noise=0.2)
    again = load_builtin("digits", split_seed=7, train_size=150, label_noise=0.2)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert getattr(first, field).tobytes() == getattr(again, field).tobytes()
    other = load_builtin("digits", split_seed=8, train_size=150, label_noise=0.2)
    assert other.x_train.tobytes() != first.x_train.tobytes()


def test_the_kept_rows_do_not_depend_on_label_noise() -> None:
    full = load_builtin("digits")
    index = [_row_index(full.x_train, load_builtin("digits", train_size=200,
                                                   label_noise=noise).x_train)
             for noise in (0.0, 0.5)]
    np.testing.assert_array_equal(index[0], index[1])


def test_the_global_random_state_is_left_alone() -> None:
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    load_builtin("digits", train_size=100, label_noise=0.3)
    assert np.random.random() == expected


def test_the_table_describes_both_options() -> None:
    params = {param["name"]: param for param in BUILTIN_DATASETS["digits"]["params"]}
    assert params["train_size"]["type"] == "integer" and params["train_size"]["default"] is None
    assert params["label_noise"]["type"] == "number" and params["label_noise"]["default"] == 0.0
    assert (params["label_noise"]["minimum"], params["label_noise"]["maximum"]) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "field", "expected"),
    [
        ({"train_size": 5}, "train_size", "an integer in [10, 1797]"),
        ({"train_size": 1798}, "train_size", "an integer in [10, 1797]"),
        ({"train_size": 150.0}, "train_size", "an integer in [10, 1797]"),
        ({"train_size": "150"}, "train_size", "an integer in [10, 1797]"),
        ({"train_size": 1500}, "train_size", "an integer in [10, 1348]"),
        ({"train_size": 1000, "test_fraction": 0.5}, "train_size", "an integer in [10, 898]"),
        ({"label_noise": -0.1}, "label_noise", "a finite number >= 0.0 and <= 1.0"),
        ({"label_noise": 1.5}, "label_noise", "a finite number >= 0.0 and <= 1.0"),
        ({"label_noise": float("nan")}, "label_noise", "a finite number >= 0.0 and <= 1.0"),
        ({"label_noise": None}, "label_noise", "a finite number >= 0.0 and <= 1.0"),
    ],
)
def test_bad_values_name_the_field_and_the_rule(kwargs: dict, field: str, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        load_builtin("digits", **kwargs)
    assert info.value.field == field
    assert info.value.expected.startswith(expected), info.value.expected


@pytest.mark.parametrize("name", ["spirals", "blobs", "xor"])
def test_only_digits_takes_the_options(name: str) -> None:
    with pytest.raises(SpecError) as info:
        load_builtin(name, label_noise=0.1)
    assert info.value.field == "label_noise"
