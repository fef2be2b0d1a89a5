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


def test_matching_features_resized_as_they_are_pooled_equal_the_resized_stack():
    """The colorizer hands the frozen levels' maps over at their own sizes (ResizedMaps), never stacked at full
    resolution: the hints and the attention must be exactly those of the resized, concatenated maps, and so must
    the gradients. 70 channels: a chunk of 64 and a rest."""
    import torch.nn.functional as F

    from sa_lib.superpixels.pyramid import ResizedMaps

    torch.manual_seed(0)
    block = SuperAttention(4, 4, 4 + 73, 4, match_channels=73, match_groups=(70, 3))
    labels = torch.randint(0, 5, (2, 8, 8))
    labels[:, 0, :5] = torch.arange(5)  # every label used in both images
    counts = torch.tensor([5, 5])
    features = [torch.randn(2, 4, 8, 8, requires_grad=True) for _ in range(3)]
    maps_t = (torch.randn(2, 70, 4, 4), torch.randn(2, 3, 2, 2))
    maps_r = (torch.randn(2, 70, 4, 4), torch.randn(2, 3, 2, 2))
    stack = lambda maps: torch.cat([F.interpolate(m, size=(8, 8), mode="bilinear", align_corners=False)  # noqa: E731
                                    for m in maps], dim=1)  # (2, 73, 8, 8)
    outputs = []
    for target_match, reference_match in ((ResizedMaps(maps_t, (8, 8)), ResizedMaps(maps_r, (8, 8))),
                                          (stack(maps_t), stack(maps_r))):
        hints, attn = block(*features, labels, labels, counts, counts, target_match=target_match,
                            reference_match=reference_match)
        grads = torch.autograd.grad(hints.square().sum(), features)
        outputs.append((hints, attn, *grads))
    for resized, stacked in zip(*outputs):
        assert torch.equal(resized, stacked)


# ----------------------------------------------------------------------------- precision (issue 13, item 2)


def _argmax_agreement(a, b):
    return float((a.argmax(-1) == b.argmax(-1)).float().mean())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_super_attention_under_cpu_autocast_equals_float32_within_1e_3(dtype):
    """The correlation and softmax run in float32 whatever the caller's autocast (tau = 0.01 magnifies any
    rounding of the correlation 100 times)."""
    torch.manual_seed(0)
    block = SuperAttention(32, 16, 32, 8)
    labels = torch.stack([_grid_labels(28, 28, 2)] * 2)  # 196 superpixels, as the check
    counts = torch.tensor([196, 196])
    inputs = (torch.randn(2, 32, 28, 28), torch.randn(2, 32, 28, 28), torch.randn(2, 16, 28, 28),
              labels, labels, counts, counts)
    out32, attn32 = block(*inputs)
    with torch.autocast("cpu", dtype=dtype):
        out_amp, attn_amp = block(*inputs)
    assert attn_amp.dtype == torch.float32 and out_amp.dtype == torch.float32
    assert (attn_amp - attn32).abs().max() <= 1e-3
    assert (out_amp - out32).abs().max() <= 1e-3
    assert _argmax_agreement(attn_amp[0], attn32[0]) == 1.0


def test_standard_attention_under_cpu_autocast_equals_float32_within_1e_3():
    torch.manual_seed(0)
    block = StandardAttention(32, 16, 32, 8)
    inputs = (torch.randn(2, 32, 14, 14), torch.randn(2, 32, 14, 14), torch.randn(2, 16, 14, 14))
    out32, attn32 = block(*inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_amp, attn_amp = block(*inputs)
    assert attn_amp.dtype == torch.float32
    assert (attn_amp - attn32).abs().max() <= 1e-3 and (out_amp - out32).abs().max() <= 1e-3


def test_bf16_correlation_would_change_the_attention():
    """Why the float32 island exists: the same correlation computed in bf16 moves the attention by far more
    than the 1e-3 the blocks guarantee (so the test above can fail)."""
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(1, 32, 196), dim=1)
    k = torch.nn.functional.normalize(torch.randn(1, 32, 196), dim=1)
    exact = torch.softmax(torch.bmm(q.transpose(1, 2), k) / 0.01, dim=-1)
    rounded = torch.softmax(torch.bmm(q.transpose(1, 2).bfloat16(), k.bfloat16()).float() / 0.01, dim=-1)
    assert (rounded - exact).abs().max() > 1e-2


# ------------------------------------------------------------ standard attention's similarity (item 4)


def test_standard_attention_uses_eq3_correlation_over_positions():
    """similarity "correlation": softmax(M / tau) with M the cosine of the projected centred, normalised
    feature vectors of each position: computed here by hand, and equal to SuperAttention's matrix when every
    position is its own superpixel."""
    from sa_lib.model.attention import DEFAULT_TAU

    torch.manual_seed(1)
    block = StandardAttention(6, 4, 5, 3)
    f_t, f_r, colors = torch.randn(1, 6, 3, 4), torch.randn(1, 6, 2, 5), torch.randn(1, 4, 2, 5)
    _, attn = block(f_t, f_r, colors)

    def tokens(conv, f):
        x = f.flatten(2)
        x = (x - x.mean(1, keepdim=True)) / (x - x.mean(1, keepdim=True)).norm(dim=1, keepdim=True)
        y = torch.einsum("oc,bcn->bon", conv.weight[:, :, 0, 0], x) + conv.bias[None, :, None]
        return y / y.norm(dim=1, keepdim=True)

    m = torch.bmm(tokens(block.query, f_t).transpose(1, 2), tokens(block.key, f_r))
    assert m.abs().max() <= 1 + 1e-5
    torch.testing.assert_close(attn, torch.softmax(m / DEFAULT_TAU, dim=-1), atol=1e-5, rtol=0)

    sup = SuperAttention(6, 4, 5, 3)
    sup.load_state_dict({k: v[..., 0] if v.dim() == 4 else v for k, v in block.state_dict().items()})  # same 1x1
    lt, lr = torch.arange(12).reshape(1, 3, 4), torch.arange(10).reshape(1, 2, 5)  # one superpixel per position
    _, sup_attn = sup(f_t, f_r, colors, lt, lr, torch.tensor([12]), torch.tensor([10]))
    torch.testing.assert_close(attn, sup_attn, atol=1e-5, rtol=0)


def test_standard_attention_scaled_dot_is_the_earlier_maths():
    torch.manual_seed(2)
    block = StandardAttention(6, 4, 5, 3, similarity="scaled_dot")
    f_t, f_r, colors = torch.randn(1, 6, 3, 4), torch.randn(1, 6, 2, 5), torch.randn(1, 4, 2, 5)
    _, attn = block(f_t, f_r, colors)
    q, k = block.query(f_t).flatten(2), block.key(f_r).flatten(2)
    torch.testing.assert_close(attn, torch.softmax(torch.bmm(q.transpose(1, 2), k) * 5 ** -0.5, dim=-1))
    with pytest.raises(ValueError, match="similarity"):
        StandardAttention(6, 4, 5, 3, similarity="cosine")
