"""Top-K expert restoration is exactly eq. 5 of the paper."""
import torch
import torch.nn.functional as F

from allweather_ros.model.experts import TopKExperts


def _reference_eq5(experts: TopKExperts, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """A naive per-pixel loop: smoothed softmax scores, top-K, sum of S * (F_n conv X)."""
    scores = torch.softmax(experts.score(m), dim=1)
    k = experts.smooth_kernel
    scores = F.avg_pool2d(scores, k, 1, k // 2, count_include_pad=False)
    filters = experts.expert_filters()  # N, C, C, 3, 3
    xp = F.pad(x, (1, 1, 1, 1))
    b, c, h, w = x.shape
    out = torch.zeros_like(x)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                s = scores[n, :, i, j]
                best = sorted(range(len(s)), key=lambda e: -float(s[e]))[:experts.top_k]
                patch = xp[n, :, i:i + 3, j:j + 3]  # C, 3, 3
                for e in best:
                    response = (filters[e] * patch).sum(dim=(1, 2, 3))  # C
                    out[n, :, i, j] += s[e] * response
    return out


def test_fused_top_k_equals_naive_per_pixel_loop():
    torch.manual_seed(0)
    experts = TopKExperts(channels=6, num_experts=5, top_k=2, expand=2, smooth_kernel=3).double()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    m = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        fused, weights, indices = experts(x, m)
        reference = _reference_eq5(experts, x, m)
    torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-10)
    assert indices.shape == (2, 2, 5, 7)
    assert (weights[:, 0] >= weights[:, 1]).all()


def test_without_smoothing_selection_is_per_pixel():
    torch.manual_seed(1)
    experts = TopKExperts(channels=4, num_experts=6, top_k=1, smooth_kernel=1)
    m = torch.randn(1, 4, 6, 6)
    weights, indices = experts.selection(m)
    raw = torch.softmax(experts.score(m), dim=1)
    torch.testing.assert_close(indices[:, 0], raw.argmax(dim=1))
    torch.testing.assert_close(weights[:, 0], raw.amax(dim=1))


def test_gradients_reach_chosen_experts_only():
    torch.manual_seed(2)
    experts = TopKExperts(channels=4, num_experts=6, top_k=1, smooth_kernel=1)
    x, m = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    out, _, indices = experts(x, m)
    out.sum().backward()
    per_expert = experts.expert_kernels.weight.grad.view(-1, 6, 3, 3).abs().sum(dim=(0, 2, 3))
    chosen = set(indices.unique().tolist())
    for e in range(6):
        assert (per_expert[e] > 0) == (e in chosen), (e, chosen)
    assert experts.score[0].weight.grad.abs().sum() > 0, "the router must get a gradient"


def test_invalid_top_k_is_refused():
    import pytest

    with pytest.raises(ValueError, match="top_k"):
        TopKExperts(channels=4, num_experts=3, top_k=4)
