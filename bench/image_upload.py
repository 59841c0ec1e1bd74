"""Image-folder uploads: how fast parse_upload reads a zip of PNG class folders.

    python bench/image_upload.py [--per-class 1000] [--size 28] [--color-mode grayscale]
                                 [--repeats 3]

Writes a zip of `per-class` noisy shapes in each of three class folders with Pillow (the tests'
builder, tests/datasets/image_folders.py), then times service.datasets.uploads.parse_upload on
it (every check, two passes over the members: headers, then decoding) and
service.datasets.storage.pack_arrays (the .npz the datasets table stores). Reports the best of
`repeats` runs: wall and CPU seconds, images per second, MB of zip per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.datasets.images import ImageOptions
from service.datasets.storage import pack_arrays
from service.datasets.uploads import parse_upload
from tests.datasets.image_folders import shapes_zip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--color-mode", choices=["grayscale", "rgb"], default="grayscale")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = shapes_zip(args.per_class, size=args.size)
    n_images = 3 * args.per_class
    options = ImageOptions(args.color_mode)
    parse_seconds, parse_cpu, pack_seconds = [], [], []
    for _ in range(args.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        parsed = parse_upload("shapes.zip", data, image_options=options)
        parse_seconds.append(time.perf_counter() - start)
        parse_cpu.append(time.process_time() - cpu)
        start = time.perf_counter()
        pack_arrays(parsed.dataset)
        pack_seconds.append(time.perf_counter() - start)
    best = min(parse_seconds)
    print(f"{n_images} PNG images {args.size}x{args.size} {args.color_mode}, "
          f"zip {len(data) / 1e6:.2f} MB, x_train {parsed.dataset.x_train.shape}")
    print(f"parse_upload: {best:.3f} s best of {args.repeats}, {n_images / best:,.0f} images/s, "
          f"{len(data) / 1e6 / best:.1f} MB/s (CPU {min(parse_cpu):.3f} s: the rest is "
          "waiting for a core)")
    print(f"pack_arrays:  {min(pack_seconds):.3f} s")


if __name__ == "__main__":
    main()
