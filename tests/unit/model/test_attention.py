"""GQA: equals full pixel attention when clusters are exact and T covers them; cluster bookkeeping."""

from __future__ import annotations

import torch

from model.layers.attention import GQA, cluster_means, cluster_slots


def test_quantized_equals_full_attention_on_exact_clusters() -> None:
    torch.manual_seed(0)
    B, c, H, W, M = 2, 16, 8, 6, 5
    prototypes_bmc = torch.randn(B, M, c)
    idx_bn = torch.randint(0, M, (B, H * W))
    x_bnc = torch.gather(prototypes_bmc, 1, idx_bn.unsqueeze(2).expand(-1, -1, c))
    x_bchw = x_bnc.view(B, H, W, c).permute(0, 3, 1, 2).contiguous()
    gqa = GQA(c, head_dim=8, top_t=M)
    full = GQA(c, head_dim=8, top_t=M, full=True)
    full.load_state_dict(gqa.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            gqa(x_bchw, idx_bn, num_codes=12), full(x_bchw, idx_bn, num_codes=12), rtol=1e-4, atol=1e-5
        )


def test_top_t_keeps_most_used_clusters() -> None:
    idx_bn = torch.tensor([[3, 3, 3, 1, 1, 0, 2, 2, 2, 2]])
    slot_bn, n_bt = cluster_slots(idx_bn, num_codes=5, top_t=2)
    assert n_bt.tolist() == [[4, 3]]
    assert slot_bn.tolist() == [[1, 1, 1, 2, 2, 2, 0, 0, 0, 0]]  # slot 2 = discarded
    x_bnc = torch.arange(10.0).view(1, 10, 1)
    means = cluster_means(x_bnc, slot_bn, n_bt)
    assert means.flatten().tolist() == [7.5, 1.0]
