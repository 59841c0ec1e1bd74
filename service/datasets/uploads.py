"""An uploaded file turned into a validated Dataset, every byte of it treated as hostile.

    .npz  a zip holding exactly x_train.npy, y_train.npy, x_test.npy and y_test.npy
          (service.datasets.npz_upload).
    CSV   UTF-8 text with a header row; one column holds the labels, every other column is a
          feature (service.datasets.csv_upload). The rows are split stratified into train and
          test.
    zip of image folders  train/<class>/<image> PNG or JPEG, optionally test/<class>/...
          (service.datasets.images): labels and class_names from the sorted class folders;
          without test/ the images are split like a CSV's rows.

The result follows service.datasets.rules: x (N, F) or (N, C, H, W) float32, all finite; y (N,)
int64 in [0, n_classes). Every failure is an InvalidInput (422) naming the culprit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service.engine.datasets import Dataset
from service.errors import InvalidInput

from . import images
from .csv_upload import parse_csv
from .images import ImageOptions
from .npz_upload import parse_npz
from .rules import (
    DEFAULT_LIMITS,
    MAX_NAME_CHARS,
    UploadLimits,
    check_arguments,
    dataset_from,
    invalid,
    preview,
)
from .rules import split as split_rows
from .zips import is_zip, open_zip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedUpload:
    """An accepted upload: x float32 finite, y int64 in [0, n_classes)."""

    dataset: Dataset
    source_format: str  # "npz", "csv" or "images"


def parse_upload(
    filename: str,
    data: bytes,
    *,
    label_column: str | None = None,
    test_fraction: float = 0.25,
    split_seed: int = 0,
    name: str | None = None,
    image_options: ImageOptions | None = None,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> ParsedUpload:
    """The dataset in `data`, told apart by content: a zip of train/ (and test/) folders is
    image folders, another zip an .npz, anything else a CSV.

    An .npz, and image folders with a test/ folder, carry their own split; a CSV or image
    folders without test/ are split with `test_fraction` and `split_seed` (stratified, see
    service.engine.datasets.train_test_split), both checked for every format. `label_column`
    applies to CSV only, `image_options` (None: the defaults) to image folders only. The
    dataset is named `name`, else `filename`. Raises InvalidInput (422) and nothing else.
    """
    try:
        check_arguments(test_fraction, split_seed, label_column)
        data = bytes(data)
        if not data:
            raise invalid("file", "the file is empty", expected="an .npz archive or a UTF-8 "
                          "CSV with a header row", received="0 bytes")
        class_names = None
        archive = (open_zip(data, max_entries=images.max_entries(limits), expected="an .npz "
                            "archive or a zip of image folders, " + images.LAYOUT)
                   if is_zip(data) else None)
        if archive is not None and label_column is not None:
            raise invalid("label_column", "label_column applies to CSV uploads only",
                          expected="no label_column with a zip (its labels are y_train and "
                          "y_test, or its class folders)", received=preview(label_column))
        if archive is not None and images.holds_image_folders(archive):
            folders = images.parse_image_folders(archive, len(data),
                                                 image_options or ImageOptions(), limits)
            if folders.x_test is None or folders.y_test is None:
                arrays = split_rows(folders.x_train, folders.y_train, test_fraction, split_seed)
            else:
                arrays = {"x_train": folders.x_train, "y_train": folders.y_train,
                          "x_test": folders.x_test, "y_test": folders.y_test}
            source_format, class_names = "images", folders.class_names
        elif image_options is not None:
            raise invalid("color_mode", "color_mode, image_height and image_width apply to "
                          "zips of image folders only", expected="no image options with an "
                          ".npz or a CSV", received=image_options.color_mode)
        elif archive is not None:
            arrays, source_format = parse_npz(data, limits), "npz"
        else:
            x, y = parse_csv(data, label_column, limits)
            arrays, source_format = split_rows(x, y, test_fraction, split_seed), "csv"
        dataset = dataset_from(arrays, name=name, filename=filename, class_names=class_names)
    except InvalidInput:
        raise
    except MemoryError:
        raise invalid("file", "the dataset is too large to process", type="limit",
                      expected="a smaller dataset", received=f"{len(data)} bytes") from None
    except Exception as error:
        # A failure no check anticipated: still the client's file at fault, never a 500.
        log.warning("upload %r could not be parsed", str(filename)[:MAX_NAME_CHARS],
                    exc_info=True)
        raise invalid("file", "the file could not be read", expected="an .npz archive or a "
                      "UTF-8 CSV", received=type(error).__name__) from error
    return ParsedUpload(dataset=dataset, source_format=source_format)

