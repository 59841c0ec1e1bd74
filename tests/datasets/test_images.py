"""Zips of image folders through parse_upload: the layout, the decoded values, and a 422 naming
the file and the rule for every malformed or oversized archive."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from service.datasets.images import ImageOptions
from service.datasets.uploads import UploadLimits, parse_upload
from service.errors import ErrorDetail, InvalidInput
from tests.datasets.hostile_files import MiB, crafted_zip, deflate, deflated_zeros
from tests.datasets.image_folders import encode, shape_members, shapes_zip, zip_of
from tests.datasets.test_uploads import measured

GRAY = ImageOptions("grayscale")


def members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Four small shape images in each of three train classes (12), plus `extra`."""
    return shape_members(4) | (extra or {})


def rejected(data: bytes, path: str, rule: str, **kwargs: Any) -> ErrorDetail:
    with pytest.raises(InvalidInput) as caught:
        parse_upload("shapes.zip", data, **kwargs)
    assert caught.value.status == 422
    detail = caught.value.details[0]
    assert (detail.path, detail.type) == (path, rule), detail
    return detail


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height 8-bit grayscale pixels, with one tiny IDAT."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


# --- accepted -----------------------------------------------------------------------------


def test_train_and_test_folders_give_sorted_classes_and_nchw_images() -> None:
    parsed = parse_upload("shapes.zip", shapes_zip(5, 2), image_options=GRAY)
    dataset = parsed.dataset
    assert parsed.source_format == "images"
    assert dataset.class_names == ("circle", "square", "triangle") and dataset.n_classes == 3
    assert dataset.x_train.shape == (15, 1, 28, 28) and dataset.x_test.shape == (6, 1, 28, 28)
    assert dataset.x_train.dtype == np.float32
    assert dataset.x_train.min() >= 0.0 and dataset.x_train.max() <= 1.0
    assert dataset.y_train.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert dataset.y_test.tolist() == [0, 0, 1, 1, 2, 2]


def test_pixel_values_are_divided_by_255_channels_first() -> None:
    gray = Image.fromarray(np.array([[0, 51], [102, 255]], dtype=np.uint8), "L")
    red = Image.new("RGB", (2, 2), (255, 0, 0))
    data = zip_of({"train/a/1.png": encode(gray), "train/b/1.png": encode(red),
                   "test/a/1.png": encode(gray), "test/b/1.png": encode(red)})
    rgb = parse_upload("x.zip", data).dataset  # rgb by default, as in Keras
    assert rgb.x_train.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(rgb.x_train[0, 1], [[0, 0.2], [0.4, 1.0]], atol=1e-7)
    np.testing.assert_array_equal(rgb.x_train[1, :, 0, 0], [1.0, 0.0, 0.0])
    gray_mode = parse_upload("x.zip", data, image_options=GRAY).dataset
    assert gray_mode.x_train.shape == (2, 1, 2, 2)
    np.testing.assert_allclose(gray_mode.x_train[0, 0], [[0, 0.2], [0.4, 1.0]], atol=1e-7)


def test_class_folders_sort_as_python_sorts_names_like_keras() -> None:
    image = encode(Image.new("L", (3, 3), 9))
    data = zip_of({"train/b/x.png": image, "train/C/x.png": image, "train/a/deep/er/x.jpeg":
                   encode(Image.new("L", (3, 3), 9), "JPEG"), "test/a/y.png": image,
                   "train/": b"", "train/b/": b""})
    dataset = parse_upload("x.zip", data).dataset
    assert dataset.class_names == ("C", "a", "b")
    assert dataset.y_train.tolist() == [0, 1, 2] and dataset.y_test.tolist() == [1]


def test_without_test_folder_test_fraction_splits_each_class() -> None:
    dataset = parse_upload("x.zip", shapes_zip(8), test_fraction=0.25, split_seed=3,
                           image_options=GRAY).dataset
    assert (len(dataset.x_train), len(dataset.x_test)) == (18, 6)
    assert np.bincount(dataset.y_test).tolist() == [2, 2, 2]


def test_target_size_resizes_mixed_sizes_and_jpeg_rgb() -> None:
    data = zip_of(members({"train/circle/big/x.jpg": encode(
        Image.new("RGB", (40, 30), (10, 200, 30)), "JPEG")}))
    dataset = parse_upload("x.zip", data, image_options=ImageOptions("rgb", (16, 20))).dataset
    assert dataset.x_train.shape[1:] == (3, 16, 20)


# --- refused, naming the file and the rule ------------------------------------------------

NOT_PNG = b"this is a text file that says it is a PNG"
NOISE = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
TRUNCATED = encode(Image.fromarray(NOISE, "L"))[:400]  # the header, half the pixel data


@pytest.mark.parametrize(("extra", "path", "rule"), [
    ({"train/circle/bad.png": NOT_PNG}, "file.train/circle/bad.png", "not_an_image"),
    ({"train/circle/cut.png": TRUNCATED}, "file.train/circle/cut.png", "not_an_image"),
    ({"train/circle/anim.png": encode(Image.new("L", (28, 28)), "GIF")},
     "file.train/circle/anim.png", "not_an_image"),
    ({"train/circle/notes.txt": b"hello"}, "file.train/circle/notes.txt", "not_an_image"),
    ({"train/../../etc/evil.png": TRUNCATED}, "file.train/../../etc/evil.png", "path"),
    ({"/abs/train/x.png": TRUNCATED}, "file./abs/train/x.png", "path"),
    ({"train\\circle\\x.png": TRUNCATED}, "file.train\\circle\\x.png", "path"),
    ({"train/circle/\x07bell.png": TRUNCATED}, "file.train/circle/\x07bell.png", "path"),
    ({"other/circle/x.png": TRUNCATED}, "file.other/circle/x.png", "layout"),
    ({"train/loose.png": TRUNCATED}, "file.train/loose.png", "layout"),
    ({"train/square/wide.png": encode(Image.new("L", (30, 28)))},
     "file.train/square/wide.png", "mixed_sizes"),
    ({"test/hexagon/x.png": encode(Image.new("L", (28, 28)))},
     "file.test/hexagon/x.png", "invalid"),
])
def test_malformed_members_are_422_naming_the_file(extra: dict[str, bytes], path: str,
                                                   rule: str) -> None:
    rejected(zip_of(members(extra)), path, rule, image_options=GRAY)


def test_a_mixed_size_folder_names_the_image_and_the_size_it_differs_from() -> None:
    mixed = rejected(zip_of(members({"train/triangle/zz.png":
                                     encode(Image.new("L", (28, 30)))})),
                     "file.train/triangle/zz.png", "mixed_sizes", image_options=GRAY)
    assert mixed.expected == ("28 x 28 like train/circle/000.png, or image_height and "
                              "image_width")
    assert mixed.received == "28 x 30"


def test_one_class_folder_is_not_a_classification_dataset() -> None:
    only_circles = {k: v for k, v in shape_members(4).items() if "/circle/" in k}
    rejected(zip_of(only_circles), "file", "invalid")


@pytest.mark.parametrize(("limits", "path"), [
    (UploadLimits(max_image_files=11), "file"),
    (UploadLimits(max_rows=11), "file"),
    (UploadLimits(max_image_pixels=28 * 28 - 1), "file.train/circle/000.png"),
    (UploadLimits(max_image_decoded_bytes=12 * 28 * 28 * 4 - 1), "file"),
    (UploadLimits(max_features=28 * 28 - 1), "file"),
    (UploadLimits(max_image_archive_bytes=4000), "file"),
])
def test_limits_are_checked_before_decoding(limits: UploadLimits, path: str) -> None:
    rejected(zip_of(shape_members(4)), path, "limit", image_options=GRAY, limits=limits)


def test_a_target_size_beyond_the_pixel_limit_is_refused() -> None:
    rejected(zip_of(shape_members(4)), "image_height", "limit",
             image_options=ImageOptions("grayscale", (100, 100)),
             limits=UploadLimits(max_image_pixels=5000))


@pytest.mark.parametrize(("width", "height", "limit"), [
    (100, 80, 5000),  # over the limit: refused by dropnet's own header check
    (100_000, 100_000, 16_777_216),  # 10^10 pixels: Pillow's guard refuses it while opening
])
def test_pixel_bombs_are_refused_from_the_header(width: int, height: int, limit: int) -> None:
    _, peak, outcome = measured(lambda: parse_upload(
        "x.zip", zip_of(members() | {"train/circle/bomb.png": png_declaring(width, height)}),
        image_options=GRAY, limits=UploadLimits(max_image_pixels=limit)))
    assert isinstance(outcome, InvalidInput), outcome
    detail = outcome.details[0]
    assert (detail.path, detail.type) == ("file.train/circle/bomb.png", "limit")
    assert peak < 8 * MiB, peak


def test_zip_bombs_are_refused_from_declared_sizes() -> None:
    png = encode(Image.new("L", (28, 28)))
    # A member declaring more than the archive may hold uncompressed.
    big = deflated_zeros(png, 2 * MiB)
    crc = zlib.crc32(png + bytes(2 * MiB))
    huge = crafted_zip([("train/a/1.png", deflate(png), len(png), zlib.crc32(png)),
                        ("train/b/1.png", big, len(png) + 2 * MiB, crc)])
    rejected(huge, "file.train/b/1.png", "limit", limits=UploadLimits(
        max_image_archive_bytes=MiB))
    # A member compressed a thousandfold: a bomb, whatever the limits.
    bomb = deflated_zeros(png, 100 * MiB)
    ratio = crafted_zip([("train/a/1.png", deflate(png), len(png), zlib.crc32(png)),
                         ("train/b/1.png", bomb, len(png) + 100 * MiB, 0)])
    rejected(ratio, "file.train/b/1.png", "limit")


def test_a_member_holding_more_than_it_declares_is_read_no_further() -> None:
    png = encode(Image.new("L", (28, 28), 7))
    liar = deflated_zeros(png, 64 * MiB)  # declares the PNG's size, holds 64 MiB more
    honest = [(f"{split}/{name}/1.png", deflate(png), len(png), zlib.crc32(png))
              for split, name in (("train", "a"), ("test", "a"), ("test", "b"))]
    data = crafted_zip([*honest, ("train/b/1.png", liar, len(png), zlib.crc32(png))])
    _, peak, outcome = measured(lambda: parse_upload("x.zip", data))
    assert not isinstance(outcome, InvalidInput), outcome
    assert outcome.dataset.x_train.shape == (2, 3, 28, 28)
    assert peak < 8 * MiB, peak  # the 64 MiB of zeros were never inflated


def test_a_member_holding_less_than_it_declares_is_422() -> None:
    png = encode(Image.new("L", (28, 28)))
    data = crafted_zip([("train/a/1.png", deflate(png), len(png), zlib.crc32(png)),
                        ("train/b/1.png", deflate(png), len(png) + 100, zlib.crc32(png))])
    detail = rejected(data, "file.train/b/1.png", "invalid")
    assert detail.message == "the member's data does not match its declared size"


def test_image_options_apply_to_image_folders_only() -> None:
    csv = b"a,b,label\n" + b"".join(f"{i},{i},{i % 2}\n".encode() for i in range(20))
    rejected(csv, "color_mode", "invalid", image_options=GRAY)


def test_a_target_size_needs_both_sides() -> None:
    with pytest.raises(InvalidInput) as caught:
        ImageOptions.from_form("rgb", 28, None)
    assert caught.value.details[0].path == "image_width"


def test_a_member_declaring_more_compressed_bytes_than_the_upload_is_422() -> None:
    png = encode(Image.new("L", (28, 28)))
    data = bytearray(crafted_zip([(f"train/{name}/1.png", deflate(png), len(png),
                                   zlib.crc32(png)) for name in ("a", "b")]))
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    data[second + 20 : second + 24] = struct.pack("<L", 10**9)  # its compressed size
    detail = rejected(bytes(data), "file.train/b/1.png", "invalid")
    assert detail.message == "the member declares more compressed bytes than the upload holds"
