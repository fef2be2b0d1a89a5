import pytest
import torch

from sa_lib.model.attention import StandardAttention, SuperAttention, centre_and_normalise
from sa_lib.superpixels.pyramid import superpixel_unpool


def _grid_labels(h, w, cell):
    rows = torch.arange(h)[:, None] // cell
    cols = torch.arange(w)[None, :] // cell
    return rows * ((w + cell - 1) // cell) + cols  # (h, w) contiguous square superpixels


def test_centre_and_normalise_gives_unit_zero_mean_vectors():
    x = centre_and_normalise(torch.randn(2, 7, 5) + 3)
    assert torch.allclose(x.mean(1), torch.zeros(2, 5), atol=1e-6)
    assert torch.allclose(x.norm(dim=1), torch.ones(2, 5), atol=1e-5)


def test_super_attention_rows_are_distributions_and_padding_is_masked():
    block = SuperAttention(feature_channels=6, color_channels=4, key_channels=5, value_channels=3)
    labels_t = torch.stack([_grid_labels(8, 8, 2), _grid_labels(8, 8, 4)])  # 16 and 4 superpixels
    labels_r = torch.stack([_grid_labels(6, 10, 2), _grid_labels(6, 10, 5)])  # 15 and 4 superpixels
    counts_t, counts_r = torch.tensor([16, 4]), torch.tensor([15, 4])
    out, attn = block(torch.randn(2, 6, 8, 8), torch.randn(2, 6, 6, 10), torch.randn(2, 4, 6, 10),
                      labels_t, labels_r, counts_t, counts_r)
    assert out.shape == (2, 3, 8, 8) and attn.shape == (2, 16, 15)
    assert torch.allclose(attn[0].sum(-1), torch.ones(16))
    assert torch.allclose(attn[1, :4].sum(-1), torch.ones(4))
    assert attn[1, 4:].abs().sum() == 0 and attn[1, :, 4:].abs().sum() == 0  # padding never attended


def test_super_attention_hint_is_constant_inside_each_target_superpixel():
    block = SuperAttention(4, 4, 4, 2)
    labels = _grid_labels(6, 6, 3)[None]
    out, attn = block(torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6),
                      labels, labels, torch.tensor([4]), torch.tensor([4]))
    per_superpixel = out[0, :, ::3, ::3].reshape(1, 2, 4)
    assert torch.allclose(superpixel_unpool(per_superpixel, labels), out)


def test_super_attention_finds_the_identical_superpixel_with_identity_projections():
    """Eq. 2-3 with tau = 0.01: matching a map against itself puts (almost) all weight on the diagonal."""
    block = SuperAttention(8, 8, 8, 8)
    with torch.no_grad():
        for conv in (block.query, block.key):
            conv.weight.copy_(torch.eye(8)[:, :, None])
            conv.bias.zero_()
    labels = _grid_labels(8, 8, 2)[None]
    features = superpixel_unpool(torch.randn(1, 8, 16), labels)
    _, attn = block(features, features, features, labels, labels, torch.tensor([16]), torch.tensor([16]))
    assert (attn[0].diagonal() > 0.99).all()


def test_standard_attention_is_dense_over_positions():
    block = StandardAttention(6, 4, 5, 3)
    out, attn = block(torch.randn(2, 6, 7, 5), torch.randn(2, 6, 4, 6), torch.randn(2, 4, 4, 6))
    assert out.shape == (2, 3, 7, 5) and attn.shape == (2, 35, 24)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 35))


def test_fresh_blocks_start_with_key_equal_to_query_so_identical_superpixels_match():
    for block in (SuperAttention(6, 4, 5, 3), StandardAttention(6, 4, 5, 3)):
        assert torch.equal(block.key.weight, block.query.weight) and torch.equal(block.key.bias, block.query.bias)
        assert block.key.weight.data_ptr() != block.query.weight.data_ptr()  # copies: they train independently
    block = SuperAttention(8, 8, 8, 8)
    labels = _grid_labels(8, 8, 2)[None]
    features = superpixel_unpool(torch.randn(1, 8, 16), labels)
    _, attn = block(features, features, features, labels, labels, torch.tensor([16]), torch.tensor([16]))
    assert (attn[0].argmax(-1) == torch.arange(16)).all()  # each superpixel's best match is itself


def test_carry_ab_copies_the_matched_superpixels_mean_ab_and_its_confidence():
    """carry_ab: with identity projections a superpixel matched to its twin receives the twin's mean a*b*
    (hand-computed here) and a confidence close to 1."""
    block = SuperAttention(8, 8, 8, 8, carry_ab=True)
    with torch.no_grad():
        for conv in (block.query, block.key):
            conv.weight.copy_(torch.eye(8)[:, :, None])
            conv.bias.zero_()
    labels = _grid_labels(4, 4, 2)[None]  # 4 superpixels of 2 x 2 pixels
    features = superpixel_unpool(torch.randn(1, 8, 4), labels)
    ab = torch.arange(32, dtype=torch.float32).reshape(1, 2, 4, 4) / 32  # a*b* varies inside superpixels
    out, attn = block(features, features, features, labels, labels, torch.tensor([4]), torch.tensor([4]),
                      reference_ab=ab)
    assert out.shape == (1, 8 + 3, 4, 4) and block.hint_channels == 11
    top_left_mean = ab[0, :, :2, :2].mean(dim=(1, 2))  # (2,) mean a*b* of superpixel 0
    torch.testing.assert_close(out[0, 8:10, 0, 0], top_left_mean, atol=1e-3, rtol=0)
    assert (out[0, 10] > 0.99).all()  # confidence: every row's best weight
    with pytest.raises(ValueError, match="reference_ab"):
        block(features, features, features, labels, labels, torch.tensor([4]), torch.tensor([4]))


def test_match_features_steer_the_attention():
    """match_channels: extra matching features that single out the twin make the match, even when the
    learned features say nothing (constant)."""
    block = SuperAttention(4, 4, 12, 4, match_channels=8)
    with torch.no_grad():
        for conv in (block.query, block.key):
            conv.weight.zero_()
            conv.weight[4:, 4:, 0] = torch.eye(8)
            conv.bias.zero_()
    labels = _grid_labels(8, 8, 2)[None]
    flat = torch.ones(1, 4, 8, 8)
    match = superpixel_unpool(torch.randn(1, 8, 16), labels)
    _, attn = block(flat, flat, flat, labels, labels, torch.tensor([16]), torch.tensor([16]),
                    target_match=match, reference_match=match)
    assert (attn[0].diagonal() > 0.99).all()


def test_match_features_start_as_the_mean_of_both_cosines():
    """With key channels = learned + matching channels, query and key start as the identity: the similarity
    of two superpixels is then the mean of their learned-feature and matching-feature correlations."""
    from sa_lib.model.attention import centre_and_normalise

    block = SuperAttention(4, 4, 4 + 6, 4, match_channels=6)
    assert torch.equal(block.query.weight[:, :, 0], torch.eye(10)) and torch.equal(block.key.weight, block.query.weight)
    labels = _grid_labels(4, 4, 2)[None]
    f_t, f_r = torch.randn(1, 4, 4), torch.randn(1, 4, 4)  # (B, C, S) super-features
    m_t, m_r = torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    cos = lambda a, b: torch.bmm(centre_and_normalise(a).transpose(1, 2), centre_and_normalise(b))  # noqa: E731
    expected = (cos(f_t, f_r) + cos(m_t, m_r)) / 2  # (1, S_T, S_R)
    _, attn = block(*(superpixel_unpool(x, labels) for x in (f_t, f_r, f_r)), labels, labels,
                    torch.tensor([4]), torch.tensor([4]), target_match=superpixel_unpool(m_t, labels),
                    reference_match=superpixel_unpool(m_r, labels))
    torch.testing.assert_close(attn, torch.softmax(expected / block.tau, dim=-1), atol=1e-4, rtol=0)


def test_match_groups_are_normalised_apart():
    """match_groups (the transfer option match_deep): each group of matching channels is centred and normalised
    on its own, so the identity start is the mean of the learned and of each group's correlation."""
    from sa_lib.model.attention import centre_and_normalise

    block = SuperAttention(4, 4, 4 + 6 + 3, 4, match_channels=9, match_groups=(6, 3))
    labels = _grid_labels(4, 4, 2)[None]
    f_t, f_r = torch.randn(1, 4, 4), torch.randn(1, 4, 4)  # (B, C, S) super-features
    m_t, m_r = torch.randn(1, 9, 4), torch.randn(1, 9, 4)
    m_r[:, 6:] *= 100  # a group with a larger scale must not dominate
    cos = lambda a, b: torch.bmm(centre_and_normalise(a).transpose(1, 2), centre_and_normalise(b))  # noqa: E731
    expected = (cos(f_t, f_r) + cos(m_t[:, :6], m_r[:, :6]) + cos(m_t[:, 6:], m_r[:, 6:])) / 3  # (1, S_T, S_R)
    _, attn = block(*(superpixel_unpool(x, labels) for x in (f_t, f_r, f_r)), labels, labels,
                    torch.tensor([4]), torch.tensor([4]), target_match=superpixel_unpool(m_t, labels),
                    reference_match=superpixel_unpool(m_r, labels))
    torch.testing.assert_close(attn, torch.softmax(expected / block.tau, dim=-1), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="add up"):
        SuperAttention(4, 4, 13, 4, match_channels=9, match_groups=(6, 2))
