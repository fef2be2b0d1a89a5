"""The faiss ranking over on-disk feature shards equals today's in-memory brute force, and resumes."""

import numpy as np
import pytest
import torch

faiss = pytest.importorskip("faiss")

from sa_lib.data.reference_index import (FeatureStore, StoreMismatch, build_references_faiss,  # noqa: E402
                                         candidates_key, rank_from_store)
from sa_lib.data.references import Candidate, build_references, rank_references, ranking_space  # noqa: E402


def _store(tmp_path, features: np.ndarray, dtype="float32", shard_rows=7, name="s"):
    items = [Candidate(i, i // 3) for i in range(len(features))]
    store = FeatureStore.open_or_create(tmp_path / name, len(features), candidates_key(items, "x", 8, dtype), dtype,
                                        shard_rows)
    for s in range(store.n_shards):
        a, b = store.shard_range(s)
        store.write_shard(s, features[a:b])
    return store


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_sharded_faiss_search_equals_brute_force(tmp_path, normalize, dtype):
    """Several shards, several target blocks, exclusion of the target's own image, exact ties (duplicated
    rows): the same indices as rank_references, distances to float32 rounding."""
    rng = np.random.default_rng(0)
    features = rng.standard_normal((40, 24)).astype(np.float32) * 3
    features[25] = features[4]  # an exact tie between two candidates of different images
    features[26] = features[4]
    store = _store(tmp_path, features, dtype)
    cand_img = [i // 3 for i in range(40)]
    targets = [0, 4, 5, 9, 13, 20, 25, 39]  # candidate rows used as targets
    target_img = [cand_img[r] for r in targets]
    idx, dist = rank_from_store(store, cand_img, [(store, r) for r in targets], target_img, k=4,
                                normalize=normalize, target_block=3, progress=False)
    ref_feats = torch.from_numpy(features).to(getattr(torch, dtype))
    space = ranking_space(ref_feats, normalize)
    want_idx, want_dist = rank_references(space, space[targets], cand_img, target_img, k=4)
    assert torch.equal(idx, want_idx)
    exact = (space.double()[targets][:, None, :] - space.double()[want_idx]).norm(dim=2).float()  # (T, k)
    torch.testing.assert_close(dist, exact, rtol=1e-5, atol=1e-5)
    # today's torch.cdist blocks (over 25 rows) compute |x|^2 + |y|^2 - 2 x.y: equal but for its cancellation
    torch.testing.assert_close(dist, want_dist, rtol=1e-5, atol=1e-2)
    assert dist[1, 0] == 0  # target 4's twin (row 25): exactly 0 here
    assert not any(cand_img[int(i)] == target_img[row] for row in range(len(targets)) for i in idx[row])


def test_fewer_candidates_than_k_leave_empty_slots(tmp_path):
    features = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    store = _store(tmp_path, features, shard_rows=4)
    idx, dist = rank_from_store(store, [0, 0, 0, 1, 1, 1], [(store, 0)], [0], k=4, progress=False)
    assert idx[0, :3].tolist() != [-1] * 3 and idx[0, 3] == -1 and torch.isinf(dist[0, 3])


def test_store_refuses_other_candidates_and_resumes_missing_shards(tmp_path):
    features = np.arange(60, dtype=np.float32).reshape(12, 5)
    store = _store(tmp_path, features, shard_rows=5)
    assert store.n_shards == 3 and store.missing_shards() == []
    np.testing.assert_array_equal(store.gather([11, 0, 6]), features[[11, 0, 6]])
    with pytest.raises(StoreMismatch):
        FeatureStore.open_or_create(tmp_path / "s", 12, "another-key", "float32", 5)
    store.shard_path(1).unlink()  # an interrupted run: shard 1 never got renamed into place
    again = FeatureStore.open_or_create(tmp_path / "s", 12, store.key, "float32", 5)
    assert again.missing_shards() == [1]
    with pytest.raises(ValueError, match="misses shards"):
        rank_from_store(again, [0] * 12, [(again, 0)], [1], progress=False)


def _pixels(rgb: torch.Tensor) -> torch.Tensor:
    """A cheap deterministic feature map: the crop average-pooled to 7 x 7, flattened (B, 147)."""
    return torch.nn.functional.adaptive_avg_pool2d(rgb, 7).flatten(1)


@pytest.mark.slow  # every demo crop encoded three times, with worker processes
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_demo_ranking_with_faiss_equals_brute_force_and_resumes(tmp_path, dtype):
    """The demo's pool and targets, the demo profile's normalised L2: the same top-4 of every target as
    build_references (with --half for float16), through shards written by a 2-process DataLoader."""
    from sa_lib.data.datasets import demo_dataset

    train, val = demo_dataset("train"), demo_dataset("val")
    common = dict(feature_fn=_pixels, k=4, image_size=32, batch_size=16, normalize=True, progress=False,
                  device="cpu")
    brute = build_references([train], [train, val], feature_dtype=getattr(torch, dtype), **common)
    calls = []

    def counted(rgb):
        calls.append(len(rgb))
        return _pixels(rgb)

    indexed = build_references_faiss([train], [train, val], features_dir=tmp_path / "f", num_workers=2,
                                     feature_dtype=dtype, shard_rows=256, target_block=100,
                                     **{**common, "feature_fn": counted})
    assert sum(calls) == len(brute.candidates) + len(val)  # each candidate and each val target once
    assert indexed.candidates == brute.candidates and set(indexed.targets) == set(brute.targets)
    for target, ranked in brute.targets.items():
        assert [i for i, _ in indexed.targets[target]] == [i for i, _ in ranked], target
        # equal but for the cancellation of torch.cdist's |x|^2 + |y|^2 - 2 x.y (about 1e-6 here)
        np.testing.assert_allclose([d for _, d in indexed.targets[target]], [d for _, d in ranked], atol=1e-5)
    calls.clear()
    again = build_references_faiss([train], [train, val], features_dir=tmp_path / "f", num_workers=0,
                                   feature_dtype=dtype, shard_rows=256, target_block=100,
                                   **{**common, "feature_fn": counted})
    assert calls == [] and again.targets == indexed.targets  # features and finished blocks come from disk


@pytest.mark.slow  # every demo crop, through the command
def test_cli_faiss_engine_writes_references_and_pairs(tmp_path, monkeypatch):
    """sa-references --engine faiss: features beside --out, the same files as the torch engine writes, with the
    profile's ranking encoder weights and crop size (sa_lib.profiles: paper-smoke ranks random VGG19 at 64 px)."""
    from sa_lib.cli import references as cli
    from sa_lib.data.references import load_references

    built = []

    def feature_fn(encoder, device, pretrained=True):
        built.append((encoder, pretrained))
        return _pixels

    monkeypatch.setattr(cli, "ranking_feature_fn", feature_fn)
    out, pairs = tmp_path / "refs.json", tmp_path / "pairs.csv"
    cli.main(["--profile", "demo", "--engine", "faiss", "--workers", "0", "--out", str(out),
              "--eval-pairs", str(pairs)])
    loaded = load_references(out)
    assert len(loaded.targets) == 252 and len(pairs.read_text().splitlines()) == 1 + 38
    assert (tmp_path / "refs-features" / "candidates" / "manifest.json").is_file()
    assert all(len(ranked) == 4 for ranked in loaded.targets.values())
    assert built == [("effnet_lite0", True)] and loaded.image_size == 224


def test_engine_defaults_follow_the_profile():
    """faiss for the COCO-layout profiles (paper, and paper-smoke, its path in miniature), torch for the demo;
    every profile's engine is one sa-references has."""
    from sa_lib.cli.references import ENGINES
    from sa_lib.profiles import PROFILES

    assert {name: PROFILES[name].ranking_engine for name in ("demo", "paper", "paper-smoke")} == {
        "demo": "torch", "paper": "faiss", "paper-smoke": "faiss"}
    assert {profile.ranking_engine for profile in PROFILES.values()} <= set(ENGINES)


def test_faiss_ranking_honours_random_weights_and_the_profiles_size(tmp_path, monkeypatch):
    """build_references_faiss without a feature function builds the profile's encoder as ranking_feature_fn
    does (pretrained or seeded random weights), and a store of random-weight features is never reused for
    pretrained ones."""
    from sa_lib.data import reference_index
    from sa_lib.data.datasets import demo_dataset

    built = []

    def feature_fn(encoder, device, pretrained=True):
        built.append(pretrained)
        return _pixels

    monkeypatch.setattr(reference_index, "ranking_feature_fn", feature_fn)
    val = demo_dataset("val")
    common = dict(features_dir=tmp_path / "f", k=2, image_size=16, batch_size=16, progress=False, device="cpu",
                  shard_rows=64)
    first = build_references_faiss([val], **common, pretrained=False)
    assert built == [False] and first.image_size == 16
    with pytest.raises(StoreMismatch):
        build_references_faiss([val], **common)  # pretrained: another store, not the random one's features
