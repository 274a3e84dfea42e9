"""Image files for the model: PNG, JPEG and DICOM read, windowed, resized and re-encoded.

Only re-encoded pixels ever leave the machine: a DICOM header (and any PNG/JPEG metadata such as
text chunks or EXIF) is dropped by the re-encoding, and :func:`deidentify` blanks the
identifying DICOM fields of a dataset kept in memory. Identifiers burned into the pixels are
not detected. Encoding is synchronous and CPU-bound: callers run it in a worker thread
(:func:`encode_async`), one image at a time, so images are never all in memory.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

    from medsafe.schema import Attachment

MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".dcm": "application/dicom", ".dicom": "application/dicom"}  # fmt: skip
DEFAULT_MAX_SIDE = 1024
"""Longest side, in pixels, an image is reduced to before it is sent (aspect ratio kept)."""
IDENTIFYING_FIELDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate",
    "PatientBirthTime", "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "MedicalRecordLocator", "IssuerOfPatientID", "StudyDate", "SeriesDate", "AcquisitionDate",
    "ContentDate", "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime",
    "AcquisitionDateTime", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "AccessionNumber", "StudyID",
    "StationName", "DeviceSerialNumber", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "FrameOfReferenceUID",
)  # fmt: skip
"""DICOM fields blanked by :func:`deidentify` (names, IDs, dates, institution, UIDs)."""


def media_type_of(path: Path) -> str | None:
    """The media type of an image file from its suffix, or from the DICOM preamble."""
    known = MEDIA_TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    with open(path, "rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM":
        return "application/dicom"
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return None


@dataclass(frozen=True)
class Window:
    """A DICOM display window: centre and width, in modality units (e.g. HU)."""

    center: float
    width: float


@dataclass(frozen=True)
class EncodedImage:
    """An image as sent: its bytes, media type, size and what was removed on the way."""

    data: bytes
    media_type: str
    width: int
    height: int
    removed: tuple[str, ...] = ()
    """Identifying DICOM fields the source had (names only), none of which was sent."""

    @functools.cached_property
    def uri(self) -> str:
        """``data:MEDIA;base64,...`` for an OpenAI ``image_url`` content part (built once)."""
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def data_uri(self) -> str:
        """:attr:`uri`."""
        return self.uri


def deidentify(dataset: Any) -> tuple[str, ...]:
    """Blank the identifying fields of a pydicom dataset and drop its private tags; returns the
    names of the fields that held a value."""
    removed = []
    for name in IDENTIFYING_FIELDS:
        if name in dataset and str(dataset.data_element(name).value or ""):
            removed.append(name)
            dataset.data_element(name).value = ""
    dataset.remove_private_tags()
    return tuple(removed)


@functools.lru_cache(maxsize=4096)
def _header_fields(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    import pydicom

    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    return tuple(name for name in IDENTIFYING_FIELDS if str(dataset.get(name) or ""))


def identifying_fields(path: Path) -> tuple[str, ...]:
    """The identifying fields a DICOM file's header fills (names only; pixels not read)."""
    stat = path.stat()
    return _header_fields(str(path), stat.st_size, stat.st_mtime_ns)


def _first(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(
            value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value
        )
    except (TypeError, ValueError, IndexError):
        return None


def dicom_pixels(path: Path, window: Window | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """8-bit pixels of a DICOM file (first frame), rescaled and windowed, and the identifying
    fields it carried. The window is the given one, else the header's, else min-max."""
    import numpy as np
    import pydicom

    dataset = pydicom.dcmread(path)
    removed = deidentify(dataset)
    pixels = np.asarray(dataset.pixel_array)
    if pixels.ndim == 3 and dataset.get("SamplesPerPixel", 1) == 1:
        pixels = pixels[0]
    if dataset.get("SamplesPerPixel", 1) == 3:
        return pixels.astype(np.uint8), removed
    values = pixels.astype(np.float64) * float(dataset.get("RescaleSlope", 1) or 1) + float(
        dataset.get("RescaleIntercept", 0) or 0
    )
    center = window.center if window else _first(dataset.get("WindowCenter"))
    width = window.width if window else _first(dataset.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = center - width / 2.0, center + width / 2.0
    scaled = np.clip((values - lo) / max(hi - lo, 1e-9), 0.0, 1.0) * 255.0
    if str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        scaled = 255.0 - scaled
    return scaled.round().astype(np.uint8), removed


def load_image(
    path: Path, media_type: str | None, window: Window | None = None
) -> tuple[PILImage.Image, tuple[str, ...]]:
    """A PIL image (L or RGB) of a PNG, JPEG or DICOM file, and the removed DICOM fields."""
    from PIL import Image

    if (media_type or media_type_of(path)) == "application/dicom":
        try:
            pixels, removed = dicom_pixels(path, window)
        except OSError:
            raise
        except Exception as exc:  # pydicom raises many kinds on a broken file
            raise ValueError(f"{path.name}: not a readable DICOM image ({exc})") from exc
        return Image.fromarray(pixels), removed
    with Image.open(path) as source:
        source.load()
        image = source.convert("RGB" if source.mode not in ("L", "RGB") else source.mode)
    return image, ()


def encode_image(
    path: Path,
    media_type: str | None = None,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    window: Window | None = None,
) -> EncodedImage:
    """Read, window, reduce to ``max_side`` and re-encode (PNG; JPEG sources stay JPEG)."""
    if max_side < 16:
        raise ValueError(f"max_side must be at least 16 pixels, got {max_side}")
    image, removed = load_image(path, media_type, window)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    if media_type == "image/jpeg":
        image.save(out, format="JPEG", quality=90)
        sent = "image/jpeg"
    else:
        image.save(out, format="PNG", optimize=False, compress_level=3)
        sent = "image/png"
    return EncodedImage(out.getvalue(), sent, image.size[0], image.size[1], removed)


class EncodedCache:
    """A small least-recently-used cache of encoded images by content hash (bounded in bytes),
    so that 10,000 items showing 200 images encode each image about once."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], EncodedImage] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()

    def get(self, key: tuple[str, int]) -> EncodedImage | None:
        """The cached image, refreshed as most recent."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], image: EncodedImage) -> None:
        """Store, dropping the least recently used beyond the byte budget."""
        with self._lock:
            if key in self._items or len(image.data) > self.max_bytes:
                return
            self._items[key] = image
            self._bytes += len(image.data)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.data)


_CACHE = EncodedCache()
_PENDING: dict[tuple[str, int], asyncio.Task[EncodedImage]] = {}
"""Encodings in flight, so that requests showing the same image wait for one encoding."""


async def encode_async(attachment: Attachment, max_side: int = DEFAULT_MAX_SIDE) -> EncodedImage:
    """Encode one attachment in a worker thread (never on the event loop), cached by hash;
    concurrent requests for the same image share one encoding. OSError/ValueError when the
    file cannot be read as an image."""
    key = (attachment.sha256 or attachment.path, max_side)
    found = _CACHE.get(key)
    if found is not None:
        return found
    task = _PENDING.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(_encode(attachment, max_side, key))
        _PENDING[key] = task
        task.add_done_callback(lambda done: _PENDING.pop(key, None) if _PENDING.get(key) is done
                               else None)  # fmt: skip
    return await asyncio.shield(task)


async def _encode(attachment: Attachment, max_side: int, key: tuple[str, int]) -> EncodedImage:
    encoded = await asyncio.to_thread(
        encode_image, Path(attachment.path), attachment.media_type, max_side=max_side
    )
    _CACHE.put(key, encoded)
    return encoded


async def with_images(
    messages: list[dict[str, Any]],
    attachments: tuple[Attachment, ...],
    max_side: int = DEFAULT_MAX_SIDE,
) -> list[dict[str, Any]]:
    """OpenAI chat messages with the image attachments as ``image_url`` data-URI content parts
    after the text of the first user message (other attachments are not sent)."""
    images = [a for a in attachments if a.kind == "image"]
    if not images:
        return messages
    parts: list[dict[str, Any]] = []
    for attachment in images:  # one at a time: at most one decoded image per request
        encoded = await encode_async(attachment, max_side)
        parts.append({"type": "image_url", "image_url": {"url": encoded.data_uri()}})
    out = list(messages)
    for i, message in enumerate(out):
        if message.get("role") == "user":
            text = {"type": "text", "text": str(message.get("content", ""))}
            out[i] = {**message, "content": [text, *parts]}
            return out
    return [*out, {"role": "user", "content": parts}]
