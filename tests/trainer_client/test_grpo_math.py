"""The GRPO maths against cases worked by hand, gradients included, and the advantages against the
service's own rule (the function it runs, and a live service's answers)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from service_fixtures import GOOD, MC_REF  # noqa: E402

from reward_service.scoring.advantages import group_advantages as service_advantages  # noqa: E402
from trainer_client.client import RewardClient  # noqa: E402
from trainer_client.grpo import aggregate, entropy, group_advantages, token_logprobs, token_losses  # noqa: E402

pytestmark = pytest.mark.trainer

ln = math.log


def test_clipped_surrogate_values_and_gradients_by_hand():
    logp = torch.tensor([[ln(0.5), ln(0.25)]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[ln(0.4), ln(0.25)]], dtype=torch.float64)
    out = token_losses(logp, old, torch.tensor([1.0], dtype=torch.float64), clip_low=0.2, clip_high=0.2)
    # token 1: ratio 1.25 > 1.2 with A > 0: clipped to 1.2, no gradient; token 2: ratio 1, loss -1
    assert out.loss.flatten().tolist() == pytest.approx([-1.2, -1.0])
    assert out.clipped.tolist() == [[True, False]]
    loss = aggregate(out.loss, torch.ones(1, 2), "token_mean", batch_tokens=2, batch_sequences=1, max_tokens=2)
    assert float(loss) == pytest.approx(-1.1)
    loss.backward()
    assert logp.grad.flatten().tolist() == pytest.approx([0.0, -0.5])


def test_negative_advantage_is_clipped_on_the_low_side_only():
    logp = torch.tensor([[ln(0.5), ln(0.3)]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[ln(0.4), ln(0.5)]], dtype=torch.float64)
    out = token_losses(logp, old, torch.tensor([-1.0], dtype=torch.float64), clip_low=0.2, clip_high=0.28)
    # token 1: ratio 1.25 with A < 0: the unclipped -1.25 is the smaller, loss 1.25, gradient 1.25
    # token 2: ratio 0.6 < 0.8 with A < 0: clipped to -0.8, loss 0.8, no gradient
    assert out.loss.flatten().tolist() == pytest.approx([1.25, 0.8])
    assert out.clipped.tolist() == [[False, True]]
    out.loss.sum().backward()
    assert logp.grad.flatten().tolist() == pytest.approx([1.25, 0.0])


def test_k3_kl_value_and_gradient():
    logp = torch.tensor([[ln(0.25), ln(0.5)]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[ln(0.5), ln(0.5)]], dtype=torch.float64)
    out = token_losses(logp, logp.detach(), torch.tensor([0.0], dtype=torch.float64), clip_low=0.2,
                       clip_high=0.2, ref_logp=ref, beta=0.1)
    # k3 = exp(d) - d - 1 with d = ref - logp: d = ln 2 -> 2 - ln 2 - 1; d = 0 -> 0
    assert out.kl.flatten().tolist() == pytest.approx([1 - ln(2), 0.0])
    assert out.loss.flatten().tolist() == pytest.approx([0.1 * (1 - ln(2)), 0.0])
    out.loss.sum().backward()
    # d/dlogp of beta * k3 = beta * (1 - exp(d)): -0.1 where the policy is below the reference, 0 where equal
    assert logp.grad.flatten().tolist() == pytest.approx([-0.1, 0.0])


def test_beta_zero_needs_no_reference():
    logp = torch.zeros(1, 3)
    out = token_losses(logp, logp, torch.tensor([2.0]), clip_low=0.2, clip_high=0.2)
    assert out.kl is None and out.loss.tolist() == [[-2.0, -2.0, -2.0]]


def test_aggregations_by_hand_and_micro_batches_add_up():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert float(aggregate(values, mask, "token_mean", batch_tokens=4, batch_sequences=2, max_tokens=3)) == 2.5
    assert float(aggregate(values, mask, "sequence_mean", batch_tokens=4, batch_sequences=2, max_tokens=3)) == 3.0
    assert float(aggregate(values, mask, "dr_grpo", batch_tokens=4, batch_sequences=2, max_tokens=3)) == \
        pytest.approx(10 / 6)
    for how in ("token_mean", "sequence_mean", "dr_grpo"):
        whole = aggregate(values, mask, how, batch_tokens=4, batch_sequences=2, max_tokens=3)
        parts = sum(aggregate(values[i:i + 1], mask[i:i + 1], how, batch_tokens=4, batch_sequences=2, max_tokens=3)
                    for i in range(2))
        assert float(parts) == pytest.approx(float(whole))
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(values, mask, "mean", batch_tokens=4, batch_sequences=2, max_tokens=3)  # type: ignore[arg-type]


def test_token_logprobs_and_entropy_at_a_temperature():
    logits = torch.tensor([[[0.0, ln(3.0)]]])  # softmax: 1/4, 3/4
    assert token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(ln(0.75))
    assert token_logprobs(logits, torch.tensor([[0]]), temperature=0.5).item() == pytest.approx(ln(1 / 10))
    assert entropy(logits).item() == pytest.approx(-(0.25 * ln(0.25) + 0.75 * ln(0.75)))


def test_advantages_by_hand_masked_left_out_flat_groups_counted():
    nan = math.nan
    rewards = torch.tensor([1.0, 2.0, nan, 3.0, 0.5, 0.5, 7.0, -1.0, -2.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3, 3])
    out = group_advantages(rewards, groups, "dr_grpo")
    assert out.values.tolist() == pytest.approx([-1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.5, -0.5])
    assert out.scored.tolist() == [True, True, False, True, True, True, True, True, True]
    assert out.flat_groups == 2  # group 1 (all equal) and group 2 (one item)
    rloo = group_advantages(rewards, groups, "rloo").values.tolist()
    assert rloo == pytest.approx([1 - 2.5, 0.0, 0.0, 3 - 1.5, 0.0, 0.0, 0.0, 1.0, -1.0])
    grpo = group_advantages(rewards, groups, "grpo").values.tolist()
    assert grpo[0] == pytest.approx(-1 / (1 + 1e-6))  # std of 1, 2, 3 with Bessel's correction is 1
    with pytest.raises(ValueError, match="unknown advantage mode"):
        group_advantages(rewards, groups, "ppo")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)), st.integers(0, 4)),
                min_size=1, max_size=24),
       st.sampled_from(["grpo", "dr_grpo", "rloo"]))
def test_advantages_equal_the_services_function(items, mode):
    rewards = [r for r, _ in items]
    groups = [g for _, g in items]
    expected = service_advantages(rewards, [str(g) for g in groups], mode)
    values = torch.tensor([math.nan if r is None else r for r in rewards], dtype=torch.float64)
    ours = group_advantages(values, torch.tensor(groups), mode)
    for e, o, r in zip(expected, ours.values.tolist(), rewards, strict=True):
        assert (o == 0.0) if e is None else o == pytest.approx(e, rel=1e-9, abs=1e-9)
        assert (e is None) == (r is None)


def test_advantages_equal_a_live_services(service):
    completions = [GOOD, GOOD.replace("B", "A"), GOOD.replace("B", "C"), "STUCK", GOOD, "no format at all"]
    items = [{"id": f"i{i}", "group_id": f"g{i % 2}", "completion": c, "reference": MC_REF}
             for i, c in enumerate(completions)]
    for mode in ("grpo", "dr_grpo", "rloo"):
        with RewardClient(service.base_url) as client:
            results = client.score(items, advantages=mode)
        rewards = torch.tensor([math.nan if r.reward is None else r.reward for r in results], dtype=torch.float64)
        ours = group_advantages(rewards, torch.tensor([i % 2 for i in range(len(items))]), mode).values.tolist()
        assert results[3].advantage is None  # the stuck item timed out: masked
        assert [0.0 if r.advantage is None else r.advantage for r in results] == pytest.approx(ours, abs=1e-9)
