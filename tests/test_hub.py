import hashlib
import io
import urllib.error

import pytest
import torch

from sa_lib.core import hub

PAYLOAD = b"not really weights"
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]


@pytest.fixture
def registry(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setitem(hub.REGISTRY, "toy", hub.Asset(f"https://example.invalid/toy-{PREFIX}.pth", PREFIX))
    return tmp_path / "checkpoints"


def test_download_is_verified_cached_and_atomic(monkeypatch, registry):
    calls = []
    monkeypatch.setattr(hub.urllib.request, "urlopen", lambda url, timeout: calls.append(url) or io.BytesIO(PAYLOAD))
    path = hub.fetch("toy")
    assert path.read_bytes() == PAYLOAD and path.parent == registry
    assert hub.fetch("toy") == path and len(calls) == 1  # second call served from the cache
    assert [p.name for p in registry.iterdir()] == [path.name]  # no .part file left


def test_checksum_mismatch_leaves_nothing(monkeypatch, registry):
    monkeypatch.setattr(hub.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"tampered"))
    with pytest.raises(hub.AssetUnavailable, match="checksum"):
        hub.fetch("toy")
    assert list(registry.iterdir()) == []


def test_corrupt_cached_file_is_reported(registry):
    registry.mkdir(parents=True)
    (registry / f"toy-{PREFIX}.pth").write_bytes(b"garbage")
    with pytest.raises(hub.AssetUnavailable, match="corrupt"):
        hub.fetch("toy")


def test_offline_error_is_one_line_and_says_where_to_put_the_file(monkeypatch, registry):
    def refuse(url, timeout):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr(hub.urllib.request, "urlopen", refuse)
    with pytest.raises(hub.AssetUnavailable) as info:
        hub.fetch("toy")
    message = str(info.value)
    assert "\n" not in message and str(registry / f"toy-{PREFIX}.pth") in message
    with pytest.raises(hub.AssetUnavailable, match="not cached"):
        hub.fetch("toy", download=False)
    with pytest.raises(KeyError):
        hub.fetch("nope")


def test_vgg_encoders_go_through_the_registry_offline(monkeypatch, registry):
    from sa_lib.model.encoders import build_color_encoder

    monkeypatch.setattr(hub.urllib.request, "urlopen", lambda url, timeout: (_ for _ in ()).throw(
        urllib.error.URLError("offline")))
    with pytest.raises(hub.AssetUnavailable, match="vgg19-dcbb9e9d.pth"):
        build_color_encoder("vgg19", pretrained=True)
    with pytest.raises(hub.AssetUnavailable, match="vgg19_bn-c79401a0.pth"):
        build_color_encoder("vgg19_bn", pretrained=True)
