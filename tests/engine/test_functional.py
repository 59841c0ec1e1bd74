import numpy as np
import pytest

from service.engine import functional
from service.engine.functional import ConvGeometry


def naive_windows(x, kernel, stride):
    """cols[(c, i, j), n, oh, ow] = x[n, c, sh*oh + i, sw*ow + j], by loops."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    cols = np.zeros((c, kh, kw, n, oh, ow))
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for a in range(oh):
                    for b in range(ow):
                        cols[ci, i, j, :, a, b] = x[:, ci, sh * a + i, sw * b + j]
    return cols.reshape(c * kh * kw, n, oh, ow)


@pytest.mark.parametrize(
    ("padding", "size", "kernel", "stride", "expected"),
    [
        ("valid", (5, 5), (3, 3), (1, 1), (0, 0, 0, 0)),
        (2, (5, 5), (3, 3), (1, 1), (2, 2, 2, 2)),
        ("same", (5, 5), (3, 3), (1, 1), (1, 1, 1, 1)),
        ("same", (5, 6), (4, 2), (1, 1), (1, 2, 0, 1)),  # odd total: the extra goes bottom/right
        ("same", (7, 8), (3, 3), (2, 2), (1, 1, 0, 1)),  # TensorFlow: out = ceil(in / stride)
        ("same", (4, 4), (1, 1), (3, 3), (0, 0, 0, 0)),
    ],
)
def test_resolve_padding(padding, size, kernel, stride, expected):
    pads = functional.resolve_padding(padding, size, kernel, stride)
    assert pads == expected
    if padding == "same":
        for axis in range(2):
            total = pads[2 * axis] + pads[2 * axis + 1]
            out = functional.conv_output_size(size[axis], kernel[axis], stride[axis], total)
            assert out == -(-size[axis] // stride[axis])


def test_resolve_padding_rejects_unknown_values():
    with pytest.raises(ValueError):
        functional.resolve_padding("full", (4, 4), (3, 3), (1, 1))
    with pytest.raises(ValueError):
        functional.resolve_padding(-1, (4, 4), (3, 3), (1, 1))


def test_output_sizes():
    assert functional.conv_output_size(28, 3, 1) == 26
    assert functional.conv_output_size(28, 3, 2, 2) == 14
    assert functional.conv_output_size(5, 7, 1) < 1
    assert functional.pool_output_size(11, 2, 2) == 5
    assert functional.pool_output_size(7, 3, 2) == 3


@pytest.mark.parametrize(
    ("shape", "kernel", "stride"),
    [
        ((2, 3, 6, 7), (3, 3), (1, 1)),
        ((2, 3, 6, 7), (2, 3), (1, 1)),
        ((3, 2, 7, 7), (3, 2), (2, 2)),
        ((1, 2, 8, 5), (1, 1), (3, 1)),
        ((2, 1, 5, 5), (5, 5), (1, 1)),
    ],
)
def test_im2col_matches_loops_and_col2im_is_its_adjoint(shape, kernel, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    geo = ConvGeometry.of(shape, kernel, stride)
    cols = functional.im2col(x, geo, np.empty(geo.cols_shape))
    image = functional.cols_to_image(cols, geo)  # (N, K, OH, OW) view without junk columns
    np.testing.assert_array_equal(image.transpose(1, 0, 2, 3), naive_windows(x, kernel, stride))
    # <im2col(x), c> == <x, col2im(c)> for any c with zero junk columns.
    c = functional.zero_junk(rng.standard_normal(geo.cols_shape), geo)
    back = functional.col2im(c, geo, np.empty(shape))
    assert np.sum(cols * c) == pytest.approx(np.sum(x * back), rel=1e-12)


@pytest.mark.parametrize(("shape", "kernel"), [((2, 3, 6, 7), (3, 3)), ((3, 2, 5, 4), (2, 3))])
def test_col2im_from_the_plane_layout_matches_col2im(shape, kernel):
    geo = ConvGeometry.of(shape, kernel, (1, 1))
    rows = geo.cols_shape[0]
    cols = functional.zero_junk(np.random.default_rng(0).standard_normal(geo.cols_shape), geo)
    planes = functional.cols_to_planes(cols, geo, np.zeros((rows, geo.batch * geo.plane)))
    scratch = np.full((shape[1], geo.batch * geo.plane + geo.max_offset), np.nan)
    dx = functional.col2im_planes(planes, geo, scratch)
    assert dx.shape == shape
    np.testing.assert_allclose(dx, functional.col2im(cols, geo, np.empty(shape)), atol=1e-12)


def test_stride_one_columns_leave_junk_between_rows():
    geo = ConvGeometry.of((2, 1, 5, 6), (3, 3), (1, 1))
    assert (geo.out_height, geo.out_width, geo.row) == (3, 4, 6)
    assert geo.length == 2 * 6 + 4
    z = np.ones((2, geo.batch * geo.length))
    functional.zero_junk(z, geo)
    per_image = z.reshape(2, 2, geo.length)
    assert per_image.sum() == 2 * 2 * 3 * 4
    np.testing.assert_array_equal(per_image[:, :, 4:6], 0)
    image = np.arange(2 * 2 * 3 * 4, dtype=float).reshape(2, 2, 3, 4)
    cols = functional.image_to_cols(image, geo, np.full((2, geo.batch * geo.length), 7.0))
    np.testing.assert_array_equal(functional.cols_to_image(cols, geo), image)
    assert functional.zero_junk(cols, geo).sum() == image.sum()


def test_pad_and_crop_images_round_trip():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    pads = (1, 2, 0, 3)
    padded = functional.pad_images(x, pads, np.full((2, 3, 7, 8), np.nan, dtype=np.float32))
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 3))))
    np.testing.assert_array_equal(functional.crop_images(padded, pads), x)


def test_window_views_are_the_pooling_windows():
    x = np.arange(2 * 1 * 5 * 5, dtype=float).reshape(2, 1, 5, 5)
    geo = ConvGeometry.of(x.shape, (2, 2), (2, 2))
    views = functional.window_views(x, geo)
    assert len(views) == 4
    assert all(v.shape == (2, 1, 2, 2) for v in views)
    np.testing.assert_array_equal(views[3][0, 0], [[6, 8], [16, 18]])


def test_geometry_rejects_a_kernel_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        ConvGeometry.of((1, 1, 5, 5), (7, 7), (1, 1))
