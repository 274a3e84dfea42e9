"""Image items: PNG, JPEG and DICOM attachments beside the suite file, windowed, resized and
sent as ``image_url`` data URIs; identifying DICOM fields and PNG text never reach the mock."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from medsafe.api import evaluate
from medsafe.errors import SuiteError
from medsafe.imaging.media import Window, dicom_pixels, encode_image, media_type_of
from medsafe.suites import load_items
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer, content_images

SECRETS = ("Zhang^San", "ZHANG", "ID-998877", "Secret Hospital", "19700101", "ACC-4242")


def gradient_png(path: Path, size: tuple[int, int] = (1500, 800)) -> Path:
    """A gradient with a disc (shapes, not noise) and an identifying PNG text chunk."""
    w, h = size
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 4) ** 2
    pixels = np.where(disc, 255 - x, x).astype(np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "Zhang^San ID-998877")
    Image.fromarray(pixels).convert("RGB").save(path, pnginfo=info)
    return path


def ct_dicom(path: Path, size: int = 64) -> Path:
    """A CT-like DICOM (HU via rescale) with identifying header fields."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.PatientName = "Zhang^San"
    ds.PatientID = "ID-998877"
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Secret Hospital"
    ds.AccessionNumber = "ACC-4242"
    ds.StudyDate = "20240301"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    hu = np.full((size, size), -1000, dtype=np.int32)  # air
    hu[:, size // 2 :] = 40  # soft tissue at the window centre
    hu[: size // 4, :] = 1000  # bone, above the window
    ds.PixelData = (hu + 1024).astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_window_level_and_header_removed(tmp_path: Path) -> None:
    path = ct_dicom(tmp_path / "ct.dcm")
    assert media_type_of(path) == "application/dicom"
    pixels, removed = dicom_pixels(path)
    assert pixels.dtype == np.uint8
    assert pixels[40, 5] == 0 and pixels[40, 60] == 128 and pixels[5, 5] == 255
    assert {"PatientName", "PatientID", "InstitutionName", "StudyDate"} <= set(removed)
    wide, _ = dicom_pixels(path, Window(center=0, width=4000))
    assert 0 < wide[40, 5] < wide[40, 60] < wide[5, 5] < 255


def test_large_images_are_resized_and_metadata_dropped(tmp_path: Path) -> None:
    encoded = encode_image(gradient_png(tmp_path / "big.png"), "image/png", max_side=512)
    assert (encoded.width, encoded.height) == (512, 273)
    assert b"Zhang" not in encoded.data and b"tEXt" not in encoded.data
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(jpeg)
    small = encode_image(jpeg, "image/jpeg")
    assert small.media_type == "image/jpeg" and (small.width, small.height) == (300, 200)
    with pytest.raises(ValueError, match="max_side"):
        encode_image(jpeg, "image/jpeg", max_side=4)


def _suite(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    gradient_png(images / "fundus.png")
    Image.new("RGB", (64, 48), (10, 120, 10)).save(images / "oct.jpeg")
    ct_dicom(images / "ct.dcm")
    rows: list[dict[str, Any]] = [
        {"id": "png", "kind": "image", "prompt": "Which disease? Answer: DR or AMD.",
         "attachments": ["images/fundus.png"], "classes": ["DR", "AMD"], "label": "DR",
         "modality": "fundus"},
        {"id": "jpg", "kind": "image", "prompt": "Which disease in this OCT? DR or AMD.",
         "attachments": [{"path": "images/oct.jpeg", "kind": "image"}], "classes": ["DR", "AMD"],
         "label": "AMD", "modality": "oct"},
        {"id": "dcm", "kind": "detection", "prompt": "Quality problems of this CT image?",
         "attachments": ["images/ct.dcm"], "label_set": ["noise", "artefact"], "expected": []},
    ]  # fmt: skip
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_images_reach_the_mock_as_data_uris_without_identifiers(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    items = {item.id: item for item in load_items(suite)}
    assert items["dcm"].attachments[0].media_type == "application/dicom"
    removed = items["dcm"].metadata["dicom_header_removed"]["ct.dcm"]
    assert {"PatientName", "PatientID", "InstitutionName", "AccessionNumber"} <= set(removed)
    assert all(secret not in json.dumps(items["dcm"].metadata) for secret in SECRETS)
    assert "dicom_header_removed" not in items["png"].metadata
    assert Path(items["png"].attachments[0].path).is_absolute()
    assert items["png"].attachments[0].sha256 is not None
    bodies: list[str] = []

    def answer(request: dict[str, Any]) -> str:
        bodies.append(json.dumps(request))
        text = request["messages"][-1]["content"][0]["text"]
        return "none" if "CT image" in text else "DR"

    with ThreadedMockServer(MockConfig(request_responder=answer)) as server:
        results = evaluate(
            suite,
            "openai/vision",
            base_url=server.base_url,
            scorers=["classification", "detection"],
            db=tmp_path / "store.db",
        )
        images = list(server.state.images)
    assert results.ok == 3 and len(images) == 3
    sizes = sorted(Image.open(io.BytesIO(data)).size for data in images)
    assert sizes == [(64, 48), (64, 64), (1024, 546)]
    for secret in SECRETS:
        assert all(secret.encode() not in data for data in images)
        assert all(secret not in body for body in bodies)
    block = results.scorers["classification"].classification
    assert block is not None
    assert block.per_class["DR"].sensitivity.value == 1.0
    assert block.by_modality["oct"].value == 0.0
    assert results.scorers["detection"].exact_match is not None


def test_mock_refuses_malformed_image_parts() -> None:
    good = "data:image/png;base64," + "iVBORw0KGgo="
    assert content_images([{"type": "image_url", "image_url": {"url": good}}])
    for part in (
        {"type": "image_url", "image_url": {"url": "https://example.org/x.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,/9j/"}},
        {"type": "audio"},
    ):
        with pytest.raises(ValueError):
            content_images([part])


def test_missing_or_unknown_attachments_are_located(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    path = tmp_path / "s.jsonl"
    row: dict[str, Any] = {"id": "a", "prompt": "p", "attachments": ["notes.txt"]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="not a PNG, JPEG or DICOM") as info:
        load_items(path)
    assert info.value.field == "attachments[0].path" and info.value.line == 1
    row["attachments"] = [{"path": "notes.txt", "kind": "file"}]
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,) = load_items(path)
    assert item.attachments[0].kind == "file"


def test_unreadable_dicom_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "broken.dcm").write_bytes(b"not a dicom file at all")
    path = tmp_path / "s.jsonl"
    row = {"id": "a", "kind": "image", "prompt": "p", "attachments": ["broken.dcm"]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="not a readable DICOM file") as info:
        load_items(path)
    assert info.value.field == "attachments[0].path"


def test_named_model_sets_the_image_size(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    with ThreadedMockServer(MockConfig(responder=lambda _m: "none")) as server:
        config = tmp_path / "models.toml"
        config.write_text(
            f'[models.small]\nmodel = "openai/v"\nbase_url = "{server.base_url}"\n'
            "image_max_side = 256\n",
            encoding="utf-8",
        )
        evaluate(suite, "small", config=config, scorers=["detection"], db=tmp_path / "s.db")
        sizes = sorted(Image.open(io.BytesIO(data)).size for data in server.state.images)
    assert sizes == [(64, 48), (64, 64), (256, 137)]


def test_one_encoding_per_image_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from medsafe.imaging import media
    from medsafe.schema import Attachment

    png = tmp_path / "one.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(png)
    calls: list[Path] = []
    real = media.encode_image

    def counting(path: Path, *args: Any, **kwargs: Any) -> media.EncodedImage:
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(media, "encode_image", counting)
    monkeypatch.setattr(media, "_CACHE", media.EncodedCache())
    attachment = Attachment(path=str(png), media_type="image/png", sha256="x" * 64)

    async def many() -> list[media.EncodedImage]:
        return await asyncio.gather(*(media.encode_async(attachment) for _ in range(8)))

    results = asyncio.run(many())
    assert len(calls) == 1 and len({r.data for r in results}) == 1
    assert asyncio.run(media.encode_async(attachment)) is results[0]  # cached


def test_unreadable_image_fails_its_item_only(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    (tmp_path / "images" / "oct.jpeg").write_bytes(b"no longer an image")
    with ThreadedMockServer(MockConfig(responder=lambda _m: "DR")) as server:
        results = evaluate(
            suite, "openai/v", base_url=server.base_url, scorers=["classification"],
            db=tmp_path / "s.db", retries=0,
        )  # fmt: skip
    assert (results.ok, results.failed) == (2, 1)
