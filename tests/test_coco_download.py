"""COCO 2017 download, verification and extraction, with urllib served from memory (never the network)."""

import hashlib
import io
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sa_lib.cli import coco as coco_cli
from sa_lib.data import coco
from sa_lib.core import hub
from sa_lib.data.demo_annotations import CATEGORY, mask_annotation

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes
URL = "https://example.invalid/data/toy.zip"


class Response(io.BytesIO):
    """What urlopen returns: a readable body with a status and headers."""

    def __init__(self, body: bytes, status: int = 200, headers: dict | None = None, fail_after: int | None = None):
        super().__init__(body)
        self.status, self.headers = status, {"Content-Length": str(len(body)), **(headers or {})}
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        if self.fail_after is not None and size > 0:
            size = min(size, self.fail_after - self.tell())
        return super().read(size)


class Server:
    """A fake urlopen over {url: bytes}; honours Range requests unless told to ignore them."""

    def __init__(self, files: dict[str, bytes], honour_range=True, fail_after=None):
        self.files, self.honour_range, self.fail_after = files, honour_range, fail_after
        self.requests: list[tuple[str, str | None]] = []

    def __call__(self, request, timeout=None):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        ranged = request.get_header("Range") if isinstance(request, urllib.request.Request) else None
        self.requests.append((url, ranged))
        if url not in self.files:
            raise urllib.error.URLError("Name or service not known")
        body = self.files[url]
        fail_after, self.fail_after = self.fail_after, None  # fail once only
        if ranged and self.honour_range:
            start = int(ranged.split("=")[1].rstrip("-"))
            if start >= len(body):
                raise urllib.error.HTTPError(url, 416, "Range Not Satisfiable", {}, None)
            return Response(body[start:], 206, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        return Response(body, fail_after=fail_after)


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Every test starts offline, with the data cache in tmp_path."""
    monkeypatch.setattr(hub.urllib.request, "urlopen", Server({}))
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "cache"))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(hub.REGISTRY, "toy", hub.Asset(URL, md5=hashlib.md5(PAYLOAD).hexdigest(), kind="data"))
    return hub.asset_path("toy")


def serve(monkeypatch, files, **kwargs) -> Server:
    server = Server(files, **kwargs)
    monkeypatch.setattr(hub.urllib.request, "urlopen", server)
    return server


def test_data_cache_dir_and_registry(monkeypatch, tmp_path, toy):
    assert hub.data_dir() == tmp_path / "cache" and toy == tmp_path / "cache" / "downloads" / "toy.zip"
    monkeypatch.delenv("SUPERATTN_DATA")
    assert hub.data_dir() == Path.home() / ".cache" / "superattn"
    for name, md5 in [("coco_train2017", "cced6f7f71b7629ddf16f17bbcfab6b2"),
                      ("coco_val2017", "442b8da7639aecaf257c1dceb8ba8c80"),
                      ("coco_annotations_trainval2017", "f4bbac642086de4f52a3fdda2de5fa2c")]:
        asset = hub.REGISTRY[name]
        assert asset.md5 == md5 and asset.kind == "data" and asset.url.startswith("http://images.cocodataset.org/")
    assert hub.REGISTRY["vgg19"].kind == "weights"  # the weights stay in the same registry


def test_download_is_md5_verified_and_renamed_into_place(monkeypatch, toy):
    server = serve(monkeypatch, {URL: PAYLOAD})
    assert hub.fetch("toy", progress=False) == toy and toy.read_bytes() == PAYLOAD
    assert [p.name for p in toy.parent.iterdir()] == ["toy.zip"]  # no .part left
    assert hub.fetch("toy") == toy and len(server.requests) == 1  # served from the cache


def test_partial_file_is_resumed_with_a_range_request(monkeypatch, toy):
    toy.parent.mkdir(parents=True)
    toy.with_name("toy.zip.part").write_bytes(PAYLOAD[:3000])
    server = serve(monkeypatch, {URL: PAYLOAD})
    assert hub.fetch("toy", progress=False).read_bytes() == PAYLOAD
    assert server.requests == [(URL, "bytes=3000-")]
    assert not toy.with_name("toy.zip.part").exists()


def test_server_ignoring_range_restarts_from_scratch(monkeypatch, toy):
    toy.parent.mkdir(parents=True)
    toy.with_name("toy.zip.part").write_bytes(b"stale bytes of something else")
    serve(monkeypatch, {URL: PAYLOAD}, honour_range=False)  # answers 200 with the whole file
    assert hub.fetch("toy", progress=False).read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_verified(monkeypatch, toy):
    toy.parent.mkdir(parents=True)
    toy.with_name("toy.zip.part").write_bytes(PAYLOAD)
    serve(monkeypatch, {URL: PAYLOAD})
    assert hub.fetch("toy", progress=False).read_bytes() == PAYLOAD


def test_interrupted_download_keeps_the_part_file_and_the_next_call_resumes(monkeypatch, toy):
    server = serve(monkeypatch, {URL: PAYLOAD}, fail_after=4096)
    with pytest.raises(hub.AssetUnavailable, match="resumes") as info:
        hub.fetch("toy", progress=False)
    assert "\n" not in str(info.value)
    assert toy.with_name("toy.zip.part").read_bytes() == PAYLOAD[:4096] and not toy.exists()
    assert hub.fetch("toy", progress=False).read_bytes() == PAYLOAD
    assert server.requests == [(URL, None), (URL, "bytes=4096-")]


def test_md5_mismatch_leaves_no_file_behind(monkeypatch, toy):
    serve(monkeypatch, {URL: b"tampered"})
    with pytest.raises(hub.AssetUnavailable, match="checksum"):
        hub.fetch("toy", progress=False)
    assert list(toy.parent.iterdir()) == []
    toy.with_name("toy.zip.part").write_bytes(PAYLOAD[:100])  # a resumed download that ends up wrong
    serve(monkeypatch, {URL: b"X" * len(PAYLOAD)})
    with pytest.raises(hub.AssetUnavailable, match="checksum"):
        hub.fetch("toy", progress=False)
    assert list(toy.parent.iterdir()) == []


def test_corrupt_cached_archive_is_reported(toy):
    toy.parent.mkdir(parents=True)
    toy.write_bytes(b"garbage")
    with pytest.raises(hub.AssetUnavailable, match="corrupt.*MD5"):
        hub.fetch("toy")


def test_offline_error_is_one_line_with_url_and_destination(toy):
    with pytest.raises(hub.AssetUnavailable) as info:
        hub.fetch("toy", progress=False)
    message = str(info.value)
    assert "\n" not in message and URL in message and str(toy) in message
    assert not toy.parent.exists() or list(toy.parent.iterdir()) == []  # no empty .part left
    with pytest.raises(hub.AssetUnavailable, match="not cached"):
        hub.fetch("toy", download=False)


# --- a tiny COCO laid out like the real archives -------------------------------------------------------

def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(next(iter(files)).split("/")[0] + "/", b"")  # the folder entry, as in COCO's zips
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def jpeg(height, width, box) -> bytes:
    image = np.full((height, width, 3), 90, np.uint8)
    x, y, w, h = box
    image[y:y + h, x:x + w] = (250, 40, 40)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def tiny_coco(monkeypatch):
    """val2017.zip and annotations_trainval2017.zip in memory, registered under the COCO names."""
    sizes = {1: (60, 80, (10, 10, 40, 30)), 2: (50, 50, (0, 0, 20, 20))}  # 25% and 16%
    images = {f"val2017/{i:012d}.jpg": jpeg(h, w, box) for i, (h, w, box) in sizes.items()}
    annotations = []
    for i, (h, w, (x, y, bw, bh)) in sizes.items():
        mask = np.zeros((h, w), np.uint8)
        mask[y:y + bh, x:x + bw] = 1
        annotations.append(mask_annotation(mask, i, i))
    instances = {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h}
                            for i, (h, w, _) in sizes.items()],
                 "annotations": annotations, "categories": [CATEGORY]}
    archives = {
        "coco_val2017": zip_bytes(images),
        "coco_annotations_trainval2017": zip_bytes({"annotations/instances_val2017.json":
                                                    json.dumps(instances).encode()}),
    }
    files = {}
    for name, data in archives.items():
        url = hub.REGISTRY[name].url
        monkeypatch.setitem(hub.REGISTRY, name, hub.Asset(url, md5=hashlib.md5(data).hexdigest(), kind="data"))
        files[url] = data
    return files


def test_download_coco_extracts_like_coco_and_loads(monkeypatch, tmp_path, tiny_coco):
    server = serve(monkeypatch, tiny_coco)
    base = coco.download_coco(("val",), root=tmp_path / "data", progress=False)
    assert base == tmp_path / "data" / "coco"
    assert sorted(p.name for p in (base / "val2017").iterdir()) == ["000000000001.jpg", "000000000002.jpg"]
    assert (base / "annotations" / "instances_val2017.json").is_file()
    assert sorted(p.name for p in (tmp_path / "data" / "downloads").iterdir()) == [
        "annotations_trainval2017.zip", "val2017.zip"]
    assert len(server.requests) == 2

    ds = coco.coco_dataset("val", root=tmp_path / "data")
    assert len(ds) == 2 and ds.load_rgb(1).shape == (60, 80, 3)
    assert ds.object_boxes(1) == [(10, 10, 40, 30)] and ds.object_boxes(2) == [(0, 0, 20, 20)]

    serve(monkeypatch, {})  # offline now: everything is already extracted, nothing is fetched
    assert coco.download_coco(["val"], root=tmp_path / "data", progress=False) == base
    assert coco.is_extracted("coco_val2017", tmp_path / "data")


def test_download_coco_default_root_and_archive_removal(monkeypatch, tmp_path, tiny_coco):
    serve(monkeypatch, tiny_coco)
    base = coco.download_coco(progress=False, keep_archives=False)  # root: $SUPERATTN_DATA
    assert base == tmp_path / "cache" / "coco" == coco.coco_root() and len(coco.coco_dataset("val")) == 2
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []


def test_interrupted_extraction_is_redone(monkeypatch, tmp_path, tiny_coco):
    serve(monkeypatch, tiny_coco)
    base = coco.download_coco(root=tmp_path, progress=False)
    (base / ".coco_val2017.extracted").unlink()  # as if extraction had been cut off
    (base / "val2017" / "000000000002.jpg").unlink()
    serve(monkeypatch, {})  # the verified archive is reused from the cache, offline
    coco.download_coco(root=tmp_path, progress=False)
    assert (base / "val2017" / "000000000002.jpg").is_file() and coco.is_extracted("coco_val2017", tmp_path)


def test_archive_with_unexpected_layout_is_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(zip_bytes({"elsewhere/x.jpg": b"x"}))
    with pytest.raises(ValueError, match="not laid out"):
        coco.extract_archive(archive, tmp_path / "out", "val2017", progress=False)


def test_missing_coco_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make data-coco") as info:
        coco.coco_dataset("train", root=tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        coco.coco_dataset("test", root=tmp_path)
    with pytest.raises(ValueError):
        coco.download_coco(("test",), root=tmp_path)


def test_cli_offline_prints_one_line_and_exits_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        coco_cli.main(["download", "--splits", "val", "--root", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err.count("\n") == 1 and err.startswith("python -m sa_lib.cli.coco: error: ") and "Traceback" not in err
    assert hub.REGISTRY["coco_annotations_trainval2017"].url in err
    assert str(tmp_path / "downloads" / "annotations_trainval2017.zip") in err


def test_cli_downloads(monkeypatch, tmp_path, tiny_coco, capsys):
    serve(monkeypatch, tiny_coco)
    assert coco_cli.main(["download", "--root", str(tmp_path), "--no-progress"]) == 0
    assert "COCO val2017: 2 images" in capsys.readouterr().out
