"""An uploaded file turned into a validated Dataset, every byte of it treated as hostile.

    .npz  a zip holding exactly x_train.npy, y_train.npy, x_test.npy and y_test.npy
          (service.datasets.npz_upload).
    CSV   UTF-8 text with a header row; one column holds the labels, every other column is a
          feature (service.datasets.csv_upload). The rows are split stratified into train and
          test.

The result follows service.datasets.rules: x (N, F) or (N, C, H, W) float32, all finite; y (N,)
int64 in [0, n_classes). Every failure is an InvalidInput (422) naming the culprit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service.engine.datasets import Dataset
from service.errors import InvalidInput

from .csv_upload import parse_csv
from .npz_upload import is_zip, parse_npz
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedUpload:
    """An accepted upload: x float32 finite, y int64 in [0, n_classes)."""

    dataset: Dataset
    source_format: str  # "npz" or "csv"


def parse_upload(
    filename: str,
    data: bytes,
    *,
    label_column: str | None = None,
    test_fraction: float = 0.25,
    split_seed: int = 0,
    name: str | None = None,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> ParsedUpload:
    """The dataset in `data`, told apart by content: a zip is an .npz, anything else a CSV.

    An .npz carries its own split; a CSV is split with `test_fraction` and `split_seed`
    (stratified, see service.engine.datasets.train_test_split), both checked for either
    format. `label_column` applies to CSV only. The dataset is named `name`, else `filename`.
    Raises InvalidInput (422) and nothing else.
    """
    try:
        check_arguments(test_fraction, split_seed, label_column)
        data = bytes(data)
        if not data:
            raise invalid("file", "the file is empty", expected="an .npz archive or a UTF-8 "
                          "CSV with a header row", received="0 bytes")
        if is_zip(data):
            if label_column is not None:
                raise invalid("label_column", "label_column applies to CSV uploads only",
                              expected="no label_column with an .npz (y_train and y_test "
                              "hold its labels)", received=preview(label_column))
            arrays, source_format = parse_npz(data, limits), "npz"
        else:
            x, y = parse_csv(data, label_column, limits)
            arrays, source_format = split_rows(x, y, test_fraction, split_seed), "csv"
        dataset = dataset_from(arrays, name=name, filename=filename)
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

