"""An uploaded zip of image folders, read as hostile: the layout Keras's
`image_dataset_from_directory` reads.

    train/<class>/.../<image>   PNG or JPEG (.png, .jpg, .jpeg), at any depth below its class
    test/<class>/.../<image>    optional; without it, test_fraction splits train (stratified)

The classes are the class folders under train/ sorted by name, as Keras sorts them: label i is
class_names[i]; every test class must also be a train class. Each image is decoded by Pillow,
converted to grayscale (Pillow mode "L", 1 channel) or RGB ("RGB", 3 channels; alpha dropped,
palettes expanded), resized to the target (height, width) with Pillow's bilinear filter when
one is given (else every image must have the first image's size), and stored as
x (N, C, H, W) float32 = pixel value / 255, in [0, 1]; y (N,) int64.

Checked before any image is decoded, in this order: member paths (no "..", no absolute or
backslashed path, every file inside a class folder, a .png/.jpg/.jpeg name), the file count,
each member's declared sizes and their total uncompressed, then every image's header (format,
width x height within the pixel limit, Pillow's decompression-bomb guard set to the same
limit, one size for all without a target size), then the decoded bytes of the whole dataset.
Every failure is an InvalidInput (422) whose detail path names the member,
"file.train/circle/007.png", or the archive, "file".
"""

from __future__ import annotations

import io
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from service.errors import InvalidInput

from .rules import UploadLimits, invalid, preview
from .zips import check_member

COLOR_MODES: dict[str, tuple[str, int]] = {"grayscale": ("L", 1), "rgb": ("RGB", 3)}
"""color_mode -> (Pillow mode, channels)."""
DEFAULT_COLOR_MODE = "rgb"  # Keras's default
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
MAX_CLASS_NAME_CHARS = 200
LAYOUT = "train/<class>/<image>.png|.jpg|.jpeg, optionally test/<class>/<image>"

_PILLOW_FORMATS = ("PNG", "JPEG")
_PIXEL_SCALE = 255.0
_FLOAT32_BYTES = 4
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError)


@dataclass(frozen=True)
class ImageOptions:
    """How images are decoded: `color_mode` (a COLOR_MODES key) and the target `size`
    (height, width), None to keep the images' own (common) size."""

    color_mode: str = DEFAULT_COLOR_MODE
    size: tuple[int, int] | None = None

    @classmethod
    def from_form(cls, color_mode: str | None, height: int | None,
                  width: int | None) -> ImageOptions:
        """The options from the upload form's fields; a target size needs both sides."""
        if (height is None) != (width is None):
            missing = "image_width" if width is None else "image_height"
            raise invalid(missing, "image_height and image_width go together",
                          expected="both or neither", received=None)
        if color_mode is not None and color_mode not in COLOR_MODES:
            raise invalid("color_mode", "unknown color mode",
                          expected=" or ".join(COLOR_MODES), received=preview(color_mode))
        size = None if height is None or width is None else (height, width)
        return cls(color_mode=color_mode or DEFAULT_COLOR_MODE, size=size)

    @property
    def channels(self) -> int:
        return COLOR_MODES[self.color_mode][1]


@dataclass(frozen=True)
class ImageFolders:
    """The decoded images: x (N, C, H, W) float32 in [0, 1], y (N,) int64 indexing
    class_names; x_test and y_test None when the zip has no test/ folder."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class _Image:
    """One image member: its zip entry, its split ("train" or "test") and its class folder."""

    info: zipfile.ZipInfo
    split: str
    class_name: str

    @property
    def path(self) -> str:
        return member_path(self.info)


def member_path(info: zipfile.ZipInfo) -> str:
    """How an error names a member: "file." + its name in the zip."""
    return "file." + preview(info.filename)


def holds_image_folders(archive: zipfile.ZipFile) -> bool:
    """Whether the zip is laid out as image folders (something under train/, no .npy member)
    rather than an .npz."""
    names = archive.namelist()
    return (any(name.startswith("train/") for name in names)
            and not any(name.endswith(".npy") for name in names))


def max_entries(limits: UploadLimits) -> int:
    """The entries a zip of image folders may list: its files, and a directory entry for each
    split and class folder."""
    return limits.max_image_files + len(SPLITS) * (limits.max_classes + 1)


def parse_image_folders(archive: zipfile.ZipFile, archive_bytes: int, options: ImageOptions,
                        limits: UploadLimits) -> ImageFolders:
    """The images of a zip of `archive_bytes` bytes, every limit checked before decoding."""
    images = _images(archive, limits)
    class_names = _class_names(images, limits)
    _check_declared_sizes(images, archive_bytes, limits)
    height, width = _common_size(archive, images, options, limits)
    _check_decoded_size(len(images), options.channels, height, width, limits)
    labels = {name: index for index, name in enumerate(class_names)}
    splits = {}
    for split in SPLITS:
        members = [image for image in images if image.split == split]
        if not members:
            continue
        x = np.empty((len(members), options.channels, height, width), dtype=np.float32)
        for row, image in enumerate(members):
            _decode(archive, image, options, (height, width), limits, out=x[row])
        y = np.array([labels[image.class_name] for image in members], dtype=np.int64)
        splits[split] = (x, y)
    x_test, y_test = splits.get("test", (None, None))
    return ImageFolders(*splits["train"], x_test, y_test, class_names)


def _images(archive: zipfile.ZipFile, limits: UploadLimits) -> list[_Image]:
    """Every file of the archive as an image of a class folder, sorted by split, class and
    name; directory entries are only checked for their paths."""
    infos = archive.infolist()
    files = [info for info in infos if not info.is_dir()]
    if len(files) > min(limits.max_image_files, limits.max_rows):
        most = min(limits.max_image_files, limits.max_rows)
        raise invalid("file", "the archive holds too many files", type="limit",
                      expected=f"at most {most} images", received=f"{len(files)} files")
    for info in infos:
        _check_path(info)
    images = [_image(info) for info in files]
    return sorted(images, key=lambda image: (image.split, image.class_name,
                                             image.info.filename))


def _check_path(info: zipfile.ZipInfo) -> None:
    name = info.filename.removesuffix("/") if info.is_dir() else info.filename
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name or ":" in name
            or any(part in ("", ".", "..") for part in parts)):
        raise invalid(member_path(info), "the path escapes the image folders", type="path",
                      expected="a relative path without '..', '.', '\\\\', ':' or empty parts: "
                      + LAYOUT, received=preview(info.filename))
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise invalid(member_path(info), "the path holds control characters", type="path",
                      expected="printable file and folder names", received=repr(preview(name)))
    if parts[0] not in SPLITS:
        raise invalid(member_path(info), "the entry is outside the train/ and test/ folders",
                      type="layout", expected=LAYOUT, received=preview(info.filename))


def _image(info: zipfile.ZipInfo) -> _Image:
    parts = info.filename.split("/")
    if len(parts) < 3:
        raise invalid(member_path(info), "the file is not inside a class folder",
                      type="layout", expected=LAYOUT, received=preview(info.filename))
    if PurePosixPath(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
        raise invalid(member_path(info), "the file is not an image by its name",
                      type="not_an_image", expected="a name ending in "
                      + ", ".join(IMAGE_SUFFIXES), received=preview(parts[-1]))
    if len(parts[1]) > MAX_CLASS_NAME_CHARS:
        raise invalid(member_path(info), "the class folder's name is too long", type="limit",
                      expected=f"at most {MAX_CLASS_NAME_CHARS} characters",
                      received=f"{len(parts[1])} characters")
    return _Image(info, parts[0], parts[1])


def _class_names(images: list[_Image], limits: UploadLimits) -> tuple[str, ...]:
    """The train class folders in sorted order; every test class must be one of them."""
    names = sorted({image.class_name for image in images if image.split == "train"})
    if len(names) < 2:
        raise invalid("file", "the train/ folder needs at least two class folders of images",
                      expected=LAYOUT, received=names)
    if len(names) > limits.max_classes:
        raise invalid("file", "too many class folders", type="limit",
                      expected=f"at most {limits.max_classes}", received=len(names))
    known = set(names)
    for image in images:
        if image.class_name not in known:
            raise invalid(image.path, f"class folder {image.class_name!r} is in test/ but not "
                          "in train/", expected="test classes among the train classes "
                          + ", ".join(map(repr, names[:10])), received=image.class_name)
    return tuple(names)


def _check_declared_sizes(images: list[_Image], archive_bytes: int,
                          limits: UploadLimits) -> None:
    """Refuse from the declarations alone members that would decompress to too much."""
    total = 0
    for image in images:
        info = image.info
        check_member(info, image.path, max_bytes=limits.max_image_archive_bytes,
                     max_compression_ratio=limits.max_compression_ratio)
        if info.compress_size > archive_bytes:
            raise invalid(image.path, "the member declares more compressed bytes than the "
                          "upload holds", expected=f"at most {archive_bytes} bytes",
                          received=f"{info.compress_size} bytes")
        total += info.file_size
    if total > limits.max_image_archive_bytes:
        raise invalid("file", "the archive is too large uncompressed", type="limit",
                      expected=f"at most {limits.max_image_archive_bytes} bytes in all",
                      received=f"{total} bytes")


def _read(archive: zipfile.ZipFile, image: _Image) -> bytes:
    """The member's bytes, never more than it declares (already within the limits)."""
    declared = image.info.file_size
    try:
        with archive.open(image.info) as stream:
            data = stream.read(declared + 1)
    except _READ_ERRORS as error:
        raise invalid(image.path, "the member cannot be decompressed",
                      expected="a member whose data matches its zip entry",
                      received=preview(f"{type(error).__name__}: {error}")) from None
    if len(data) != declared:
        raise invalid(image.path, "the member's data does not match its declared size",
                      expected=f"{declared} bytes", received=f"{len(data)} bytes")
    return data


@contextmanager
def _opened(data: bytes, image: _Image, limits: UploadLimits) -> Iterator[Image.Image]:
    """The image opened by Pillow (its header read, nothing decoded yet) with the
    decompression-bomb guard at the pixel limit; anything Pillow cannot read is a 422."""
    # Pillow refuses more than twice MAX_IMAGE_PIXELS and warns above it; the header check
    # below refuses everything above the limit, so the warning says nothing more.
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        with (warnings.catch_warnings(action="ignore", category=Image.DecompressionBombWarning),
              Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as picture):
            width, height = picture.size
            if width * height > limits.max_image_pixels:
                raise invalid(image.path, "the image has too many pixels", type="limit",
                              expected=f"at most {limits.max_image_pixels} pixels",
                              received=f"{width} x {height}")
            yield picture
    except InvalidInput:
        raise
    except Image.DecompressionBombError as error:
        raise invalid(image.path, "the image has too many pixels", type="limit",
                      expected=f"at most {limits.max_image_pixels} pixels",
                      received=preview(str(error))) from None
    except MemoryError:
        raise
    except Exception as error:  # Pillow's decoders fail in many ways on hostile bytes
        raise invalid(image.path, "the file is not a PNG or JPEG image that can be decoded",
                      type="not_an_image", expected="a PNG or JPEG image",
                      received=preview(f"{type(error).__name__}: {error}")) from None


def _common_size(archive: zipfile.ZipFile, images: list[_Image], options: ImageOptions,
                 limits: UploadLimits) -> tuple[int, int]:
    """(height, width) every image is stored at: the target size, else the one size all the
    images have (from their headers)."""
    if options.size is not None and options.size[0] * options.size[1] > limits.max_image_pixels:
        raise invalid("image_height", "the target size has too many pixels", type="limit",
                      expected=f"at most {limits.max_image_pixels} pixels",
                      received=f"{options.size[1]} x {options.size[0]}")
    first: tuple[_Image, tuple[int, int]] | None = None
    for image in images:
        with _opened(_read(archive, image), image, limits) as picture:
            size = (picture.height, picture.width)
        if first is None:
            first = (image, size)
        elif options.size is None and size != first[1]:
            raise invalid(image.path, "the images differ in size and no target size is "
                          "given", type="mixed_sizes",
                          expected=f"{first[1][1]} x {first[1][0]} like "
                          f"{first[0].info.filename}, or image_height and image_width",
                          received=f"{size[1]} x {size[0]}")
    assert first is not None  # _class_names found images
    return options.size or first[1]


def _check_decoded_size(n_images: int, channels: int, height: int, width: int,
                        limits: UploadLimits) -> None:
    values = channels * height * width
    if values > limits.max_features:
        raise invalid("file", "each image holds too many values", type="limit",
                      expected=f"at most {limits.max_features} values (channels x height x "
                      "width) per sample", received=f"{channels} x {height} x {width}")
    decoded = n_images * values * _FLOAT32_BYTES
    if decoded > limits.max_image_decoded_bytes:
        raise invalid("file", "the images decode to too many bytes", type="limit",
                      expected=f"at most {limits.max_image_decoded_bytes} bytes of float32",
                      received=f"{decoded} bytes for {n_images} images of "
                      f"{channels} x {height} x {width}")


def _decode(archive: zipfile.ZipFile, image: _Image, options: ImageOptions,
            size: tuple[int, int], limits: UploadLimits, *, out: np.ndarray) -> None:
    """Decode one image into `out` (C, H, W) float32 in [0, 1]."""
    mode, channels = COLOR_MODES[options.color_mode]
    height, width = size
    with _opened(_read(archive, image), image, limits) as picture:
        converted = picture.convert(mode)
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(converted, dtype=np.float32)
    pixels = pixels[np.newaxis] if channels == 1 else pixels.transpose(2, 0, 1)
    np.divide(pixels, _PIXEL_SCALE, out=out)
