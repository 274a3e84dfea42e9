"""Image items against the loopback mock (run by hand): ``python -m bench.bench_imaging``.

Writes ``--images`` distinct synthetic 1024x1024 images (half PNG, half 16-bit CT-like DICOM;
shapes and gradients, not noise) and a suite of ``--items`` image items that reference them in
turn, starts the mock server in a child process (``--latency`` seconds per answer, nothing
recorded) and runs the suite at ``--concurrency`` with the classification scorer. It prints
the wall time, answers per second against the ceiling the latency allows
(``concurrency / latency``) and this process's peak RSS. The issue's target: 10,000 items over
200 images at 100 ms and concurrency 32 -> peak RSS < 1 GiB and >= 80% of the ceiling.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pixels(i: int, n: int = 1024) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    base = (xx * (i % 7 + 1) + yy * (i % 5 + 1)) % 256
    disc = (xx - 300 - i) ** 2 + (yy - 500) ** 2 < (100 + i) ** 2
    rect = (abs(xx - 700) < 80 + i % 50) & (abs(yy - 300) < 60)
    return np.where(disc, 255 - base, np.where(rect, 30, base)).astype(np.uint16)


def _write_dicom(path: Path, pixels: np.ndarray) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.PatientName, ds.PatientID = "Bench^Patient", "BENCH-1"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = (pixels * 8).astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def build(folder: Path, n_images: int, n_items: int, images: bool = True) -> Path:
    """The images and the suite file (``images=False``: the same items without attachments, a
    baseline of the runner itself); returns the suite path."""
    from PIL import Image

    names = []
    for i in range(n_images):
        pixels = _pixels(i)
        if i % 2:
            name = f"img/{i:04d}.dcm"
            (folder / "img").mkdir(exist_ok=True)
            _write_dicom(folder / name, pixels)
        else:
            name = f"img/{i:04d}.png"
            (folder / "img").mkdir(exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
        names.append(name)
    suite = folder / "images.jsonl"
    with suite.open("w", encoding="utf-8") as handle:
        for j in range(n_items):
            name = names[j % n_images]
            row = {"id": f"q{j}", "kind": "image" if images else "open",
                   "prompt": f"Question {j}: which? A or B.", "classes": ["A", "B"],
                   "label": "A" if j % 3 else "B", "modality": name.rsplit(".", 1)[1]}  # fmt: skip
            if images:
                row["attachments"] = [name]
            handle.write(json.dumps(row) + "\n")
    return suite


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-images", action="store_true", help="Baseline: text items only.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medsafe-bench-img-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        suite = build(folder, args.images, args.items, images=not args.no_images)
        print(f"wrote {args.images} images and {args.items} items in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        mock = subprocess.Popen(
            [sys.executable, "-m", "medsafe.testing.mock_openai", "--latency", str(args.latency),
             "--no-record"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert mock.stdout is not None
            port = int(mock.stdout.readline())
            from medsafe.api import evaluate

            t1 = time.perf_counter()
            results = evaluate(
                suite,
                "openai/bench",
                base_url=f"http://127.0.0.1:{port}/v1",
                scorers=["classification"],
                db=folder / "bench.db",
                concurrency=args.concurrency,
            )
            wall = time.perf_counter() - t1
        finally:
            mock.terminate()
            mock.wait(10)
    rate = results.ok / wall
    ceiling = args.concurrency / args.latency
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{results.ok} ok, {results.failed} failed in {wall:.1f} s: {rate:.0f} answers/s, "
          f"{100 * rate / ceiling:.0f}% of the {ceiling:.0f}/s the latency allows; "
          f"peak RSS {peak:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
