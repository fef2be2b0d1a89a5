import numpy as np
import pytest
import torch

from sa_lib.superpixels.pyramid import (SuperpixelPyramid, image_pyramid_labels, level_sizes, n_segments_for,
                                slic_labels, superpixel_pool, superpixel_unpool, valid_mask)


def test_n_segments_matches_authors_at_224_and_grows_as_sqrt_of_pixels():
    assert [n_segments_for(h, w) for h, w in level_sizes(224, 224, 3)] == [224, 112, 56]
    assert n_segments_for(448, 448) == 448  # 4x the pixels -> 2x the superpixels
    assert n_segments_for(100, 400) == 200


def test_level_sizes_floor_like_max_pool():
    assert level_sizes(97, 131, 3) == [(97, 131), (48, 65), (24, 32)]


def test_labels_are_contiguous_on_real_photo(demo_pair):
    gray = demo_pair[0][0].mean(0).numpy()
    for labels in image_pyramid_labels(gray, 3):
        assert labels.dtype == np.int64
        assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))  # no empty superpixel


def test_slic_rejects_colour_input():
    with pytest.raises(ValueError):
        slic_labels(np.zeros((8, 8, 3)))


def test_pyramid_batches_counts_and_sizes(demo_pair):
    target, _ = demo_pair
    gray = torch.cat([target.mean(1, keepdim=True), target.flip(-1).mean(1, keepdim=True)])
    pyramid = SuperpixelPyramid.from_gray(gray, levels=3)
    assert [tuple(l.shape) for l in pyramid.labels] == [(2, 48, 56), (2, 24, 28), (2, 12, 14)]
    for labels, counts in zip(pyramid.labels, pyramid.counts):
        for b in range(2):
            assert counts[b] == labels[b].max() + 1 == labels[b].unique().numel()


def test_pool_unpool_inverse_on_constant_superpixels():
    labels = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3]])[None]  # (1, 3, 4)
    per_superpixel = torch.randn(1, 5, 4)
    features = superpixel_unpool(per_superpixel, labels)  # constant inside each superpixel
    assert features.shape == (1, 5, 3, 4)
    assert torch.equal(superpixel_pool(features, labels, 4), per_superpixel)
    assert torch.equal(superpixel_unpool(superpixel_pool(features, labels, 4), labels), features)


def test_pool_is_channelwise_max_with_zero_padding_and_gradients():
    labels = torch.tensor([[[0, 0, 1]]])  # (1, 1, 3): two superpixels, slot 2 is padding
    features = torch.tensor([[[[1.0, 3.0, -2.0]], [[5.0, 4.0, 7.0]]]], requires_grad=True)  # (1, 2, 1, 3)
    pooled = superpixel_pool(features, labels, 3)
    assert torch.equal(pooled.detach(), torch.tensor([[[3.0, -2.0, 0.0], [5.0, 7.0, 0.0]]]))
    pooled.sum().backward()
    assert torch.equal(features.grad, torch.tensor([[[[0.0, 1.0, 1.0]], [[1.0, 0.0, 1.0]]]]))


def test_valid_mask():
    assert valid_mask(torch.tensor([2, 3]), 3).tolist() == [[True, True, False], [True, True, True]]


def test_superpixel_mean_by_hand_with_zero_padding():
    from sa_lib.superpixels.pyramid import superpixel_mean

    labels = torch.tensor([[[0, 0, 1], [2, 2, 1]]])  # (1, 2, 3): 3 superpixels
    values = torch.tensor([[[[1.0, 3.0, 5.0], [2.0, 4.0, 7.0]]]])  # (1, 1, 2, 3)
    means = superpixel_mean(values, labels, 4)  # one padding slot
    torch.testing.assert_close(means, torch.tensor([[[2.0, 6.0, 3.0, 0.0]]]))
    with pytest.raises(ValueError, match="do not match"):
        superpixel_mean(values, labels[:, :1], 4)
