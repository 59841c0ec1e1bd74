"""Tests for the built-in datasets and the stratified train/test split."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from service.engine import datasets
from service.engine.datasets import (
    BUILTIN_DATASETS,
    SPLIT_PARAMETERS,
    Dataset,
    load_builtin,
    train_test_split,
)
from service.engine.errors import SpecError

DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
GENERATED = ("spirals", "blobs", "xor")


def _all_labels(ds: Dataset) -> np.ndarray:
    return np.concatenate([ds.y_train, ds.y_test])


def _assert_same(a: Dataset, b: Dataset) -> None:
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


# --- digits -------------------------------------------------------------------------------


def test_digits_flat_shapes_and_dtypes() -> None:
    ds = load_builtin("digits")
    assert ds.name == "digits" and ds.n_classes == 10
    assert ds.input_shape == (64,)
    assert ds.x_train.shape == (1348, 64) and ds.x_test.shape == (449, 64)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64
    assert len(ds.y_train) + len(ds.y_test) == 1797


def test_digits_image_form_for_conv_nets() -> None:
    flat = load_builtin("digits")
    images = load_builtin("digits", flat=False)
    assert images.input_shape == (1, 8, 8)
    assert images.x_train.shape == (1348, 1, 8, 8)
    assert images.x_test.shape == (449, 1, 8, 8)
    np.testing.assert_array_equal(images.x_train.reshape(-1, 64), flat.x_train)
    np.testing.assert_array_equal(images.y_test, flat.y_test)


def test_digits_content_class_counts_and_scaling() -> None:
    ds = load_builtin("digits")
    assert np.bincount(_all_labels(ds)).tolist() == DIGITS_CLASS_COUNTS
    x = np.concatenate([ds.x_train, ds.x_test])
    assert x.min() == 0.0 and x.max() == 1.0
    # Pixels were integers 0..16 divided by 16, which float32 holds exactly.
    np.testing.assert_array_equal(x * 16, np.round(x * 16))


def test_digits_npz_loads_without_pickle() -> None:
    with np.load(datasets.DIGITS_PATH, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["images", "labels"]
        images, labels = archive["images"], archive["labels"]
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.uint8
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == DIGITS_CLASS_COUNTS
    # The first sample is the familiar scikit-learn zero.
    assert labels[0] == 0
    assert images[0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_digits_licence_file_ships_beside_the_data() -> None:
    text = (datasets.DATA_DIR / "DIGITS_LICENSE.md").read_text()
    for needle in ("CC BY 4.0", "BSD 3-Clause", "Alpaydin", "scikit-learn developers"):
        assert needle in text


def test_cache_cannot_be_corrupted_through_a_dataset() -> None:
    first = load_builtin("digits", flat=False)
    reference = first.x_train.copy()
    first.x_train[:] = 99.0
    first.y_train[:] = -1
    again = load_builtin("digits", flat=False)
    np.testing.assert_array_equal(again.x_train, reference)
    assert again.y_train.min() >= 0
    images, labels = datasets._digits_arrays()
    assert not images.flags.writeable and not labels.flags.writeable
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1


# --- split --------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.333, 0.5, 0.8])
def test_split_is_stratified(fraction: float) -> None:
    ds = load_builtin("digits", test_fraction=fraction, split_seed=3)
    total = np.bincount(_all_labels(ds), minlength=10)
    in_test = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(in_test - total * fraction) <= 1.0)
    assert len(ds.y_test) == math.floor(1797 * fraction + 0.5)


def test_split_sets_are_disjoint_and_cover_the_data() -> None:
    x = np.arange(200, dtype=np.float64).reshape(100, 2)
    y = np.repeat(np.arange(4), 25)
    split = train_test_split(x, y, test_fraction=0.3, seed=1)
    rows = np.concatenate([split.x_train[:, 0], split.x_test[:, 0]]) // 2
    assert sorted(rows.tolist()) == list(range(100))
    # Each row keeps its own label.
    np.testing.assert_array_equal(split.y_train, y[(split.x_train[:, 0] // 2).astype(int)])
    # 7.5 per class: the two extra test samples go to the lowest classes on a tie.
    assert np.bincount(split.y_test).tolist() == [8, 8, 7, 7]
    # Shuffled, not in class order.
    assert not np.all(np.diff(split.y_train) >= 0)


def test_split_keeps_a_training_sample_of_every_class() -> None:
    y = np.array([0, 0, 0, 0, 1, 2, 2])
    split = train_test_split(np.zeros((7, 1)), y, test_fraction=0.5, seed=0)
    assert set(split.y_train.tolist()) == {0, 1, 2}


def test_split_without_stratification() -> None:
    y = np.repeat(np.arange(2), 50)
    split = train_test_split(np.zeros((100, 3)), y, test_fraction=0.2, seed=0, stratify=False)
    assert len(split.y_test) == 20 and len(split.y_train) == 80


def test_split_rejects_mismatched_or_empty_sets() -> None:
    with pytest.raises(SpecError) as info:
        train_test_split(np.zeros((5, 2)), np.zeros(4), test_fraction=0.2, seed=0)
    assert info.value.field == "y"
    with pytest.raises(SpecError) as info:
        train_test_split(np.zeros((3, 2)), np.arange(3), test_fraction=0.2, seed=0)
    assert info.value.field == "test_fraction"


def test_split_seed_changes_the_split_not_the_data() -> None:
    a = load_builtin("digits", split_seed=0)
    b = load_builtin("digits", split_seed=1)
    assert not np.array_equal(a.y_test, b.y_test)
    assert np.bincount(a.y_test).tolist() == np.bincount(b.y_test).tolist()
    sums_a = np.sort(np.concatenate([a.x_train, a.x_test]).sum(axis=1))
    sums_b = np.sort(np.concatenate([b.x_train, b.x_test]).sum(axis=1))
    np.testing.assert_array_equal(sums_a, sums_b)


# --- generated datasets -------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATED)
def test_generated_defaults_shapes_and_dtypes(name: str) -> None:
    ds = load_builtin(name)
    default_n = next(
        p["default"] for p in BUILTIN_DATASETS[name]["params"] if p["name"] == "n_samples"
    )
    assert len(ds.y_train) + len(ds.y_test) == default_n
    assert ds.input_shape == (2,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.all(np.isfinite(ds.x_train))
    assert set(np.unique(_all_labels(ds)).tolist()) == set(range(ds.n_classes))


@pytest.mark.parametrize(
    ("name", "params", "n_classes"),
    [
        ("spirals", {"n_samples": 301, "n_classes": 4}, 4),
        ("blobs", {"n_samples": 203, "n_classes": 7, "n_features": 5}, 7),
        ("xor", {"n_samples": 99}, 2),
    ],
)
def test_generated_classes_are_balanced(name: str, params: dict, n_classes: int) -> None:
    ds = load_builtin(name, **params)
    assert ds.n_classes == n_classes
    counts = np.bincount(_all_labels(ds), minlength=n_classes)
    assert counts.sum() == params["n_samples"]
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("name", GENERATED)
def test_generated_are_deterministic_per_seed(name: str) -> None:
    _assert_same(load_builtin(name, seed=5), load_builtin(name, seed=5))
    a, b = load_builtin(name, seed=5), load_builtin(name, seed=6)
    assert not np.array_equal(a.x_train, b.x_train)


def test_generators_leave_the_global_random_state_alone() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for name in GENERATED:
        load_builtin(name)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_xor_labels_follow_the_sign_of_x_times_y() -> None:
    ds = load_builtin("xor", noise=0.0)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        product = x[:, 0] * x[:, 1]
        np.testing.assert_array_equal(y, (product < 0).astype(np.int64))
        assert np.all(np.abs(x) <= 1.0)


def test_noise_spreads_the_points() -> None:
    quiet = load_builtin("blobs", noise=0.1, seed=2)
    loud = load_builtin("blobs", noise=3.0, seed=2)

    def spread(ds: Dataset) -> float:
        return float(np.mean([ds.x_train[ds.y_train == c].std(axis=0).mean() for c in range(3)]))

    assert spread(quiet) == pytest.approx(0.1, rel=0.2)
    assert spread(loud) == pytest.approx(3.0, rel=0.2)
    clean = load_builtin("spirals", noise=0.0)
    radius = np.linalg.norm(clean.x_train, axis=1)
    assert radius.min() >= 0.1 - 1e-6 and radius.max() <= 1.0 + 1e-6


def test_blobs_n_features_sets_the_input_shape() -> None:
    ds = load_builtin("blobs", n_features=7, n_classes=4)
    assert ds.input_shape == (7,) and ds.n_classes == 4


def test_dtype_and_to_dtype() -> None:
    ds = load_builtin("spirals", dtype="float64")
    assert ds.x_train.dtype == np.float64
    cast = ds.to_dtype(np.float32)
    assert cast.x_train.dtype == cast.x_test.dtype == np.float32
    assert cast.y_train is ds.y_train and cast.n_classes == ds.n_classes
    assert cast.to_dtype("float32") is cast
    np.testing.assert_allclose(cast.x_test, ds.x_test, rtol=1e-6)


def test_dataset_is_frozen_and_checks_lengths() -> None:
    ds = load_builtin("xor")
    with pytest.raises(AttributeError):
        ds.n_classes = 3  # type: ignore[misc]
    with pytest.raises(SpecError) as info:
        Dataset(np.zeros((3, 2)), np.zeros(2), np.zeros((1, 2)), np.zeros(1), 2, "x")
    assert info.value.field == "y_train"


# --- descriptions and errors --------------------------------------------------------------


def test_builtin_descriptions_are_json_and_complete() -> None:
    listed = json.loads(json.dumps({"datasets": BUILTIN_DATASETS, "split": SPLIT_PARAMETERS}))
    assert set(listed["datasets"]) == {"digits", "spirals", "blobs", "xor"}
    for name, entry in BUILTIN_DATASETS.items():
        assert entry["name"] == name and entry["description"]
        for param in entry["params"]:
            assert set(param) == {"name", "type", "default", "minimum", "maximum", "description"}
            assert param["type"] in ("integer", "number")
            # A default of None marks an optional parameter (digits' train_size: all rows).
            assert param["default"] is None or (
                param["minimum"] <= param["default"] <= param["maximum"])
    n_samples = next(p for p in BUILTIN_DATASETS["spirals"]["params"] if p["name"] == "n_samples")
    assert n_samples["maximum"] == 100_000


def test_changing_the_description_does_not_change_validation() -> None:
    spirals = BUILTIN_DATASETS["spirals"]["params"][0]
    saved = spirals["maximum"]
    spirals["maximum"] = 10**9
    try:
        with pytest.raises(SpecError):
            load_builtin("spirals", n_samples=200_000)
    finally:
        spirals["maximum"] = saved


@pytest.mark.parametrize(
    ("name", "kwargs", "field"),
    [
        ("mnist", {}, "name"),
        ("spirals", {"n_samples": 5}, "n_samples"),
        ("spirals", {"n_samples": 100_001}, "n_samples"),
        ("spirals", {"n_samples": 100.0}, "n_samples"),
        ("spirals", {"n_classes": 1}, "n_classes"),
        ("blobs", {"n_classes": 20, "n_samples": 30}, "n_samples"),
        ("blobs", {"n_features": 0}, "n_features"),
        ("xor", {"noise": -0.1}, "noise"),
        ("xor", {"noise": float("nan")}, "noise"),
        ("xor", {"seed": -1}, "seed"),
        ("xor", {"seed": "7"}, "seed"),
        ("xor", {"n_classes": 3}, "n_classes"),
        ("digits", {"n_samples": 100}, "n_samples"),
        ("digits", {"test_fraction": 0.0}, "test_fraction"),
        ("digits", {"test_fraction": 1.0}, "test_fraction"),
        ("digits", {"split_seed": 2**40}, "split_seed"),
        ("digits", {"flat": "yes"}, "flat"),
        ("digits", {"dtype": "int32"}, "dtype"),
        ("digits", {"dtype": "no-such-type"}, "dtype"),
    ],
)
def test_bad_parameters_raise_spec_error_with_the_field(
    name: str, kwargs: dict, field: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_builtin(name, **kwargs)
    assert info.value.field == field
    assert info.value.expected


def test_error_message_says_expected_and_received() -> None:
    with pytest.raises(SpecError) as info:
        load_builtin("spirals", n_samples=5)
    assert info.value.expected == "an integer in [10, 100000]"
    assert info.value.received == 5
    assert "Received: 5" in str(info.value)


def test_numpy_scalars_are_accepted_as_parameters() -> None:
    a = load_builtin("xor", n_samples=np.int64(50), noise=np.float32(0.25), seed=np.int32(1))
    b = load_builtin("xor", n_samples=50, noise=float(np.float32(0.25)), seed=1)
    _assert_same(a, b)
