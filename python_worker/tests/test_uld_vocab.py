"""ULD against a float64 reference, the cross-tokenizer position pairing, and the vocabulary preflight."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from textbrewer_worker.builtin_losses import BUILTIN_LOSSES
from textbrewer_worker.losses import get_loss
from textbrewer_worker.uld_loss import uld_loss
from textbrewer_worker.vocab_align import (
    VocabularyMismatchError,
    check_run_vocabularies,
    compare_tokenizers,
    cross_tokenizer_rows,
    padding_only,
)

Tensor = torch.Tensor


def reference(s: Tensor, t: Tensor, tau: float) -> Tensor:
    """Per-row τ²·Σ|sorted P_S − sorted P_T| in float64, one row at a time, the shorter padded with zeros."""
    out = []
    for row_s, row_t in zip(s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])):
        p_s = sorted(torch.softmax(row_s / tau, -1).unbind(), key=lambda x: -x.item())
        p_t = sorted(torch.softmax(row_t / tau, -1).unbind(), key=lambda x: -x.item())
        zero = row_s.new_zeros(())
        width = max(len(p_s), len(p_t))
        p_s += [zero] * (width - len(p_s))
        p_t += [zero] * (width - len(p_t))
        out.append(sum(((a - b).abs() for a, b in zip(p_s, p_t)), zero) * tau * tau)
    return torch.stack(out)


def inputs(seed: int, vocab_S: int, vocab_T: int) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(2, 5, vocab_S, generator=g, dtype=torch.float64) * 3
    t = torch.randn(2, 5, vocab_T, generator=g, dtype=torch.float64) * 3
    return s, t, torch.rand(2, 5, generator=g) > 0.3


@pytest.mark.parametrize(("vocab_S", "vocab_T"), [(30, 30), (24, 37), (41, 19)])
@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_uld_value_and_gradients_equal_the_float64_reference(vocab_S: int, vocab_T: int, tau: float) -> None:
    s, t, mask = inputs(vocab_S + vocab_T, vocab_S, vocab_T)
    s.requires_grad_(True)
    t.requires_grad_(True)
    got = uld_loss(s, t, tau, mask=mask, chunk_size=3)
    grads = torch.autograd.grad(got, [s, t])
    want = reference(s, t, tau)[mask.reshape(-1)].mean()
    want_grads = torch.autograd.grad(want, [s, t])
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-10)


def test_uld_chunked_equals_unchunked_and_is_zero_for_a_permuted_copy() -> None:
    s, t, _ = inputs(3, 30, 50)
    torch.testing.assert_close(uld_loss(s, t, 2.0, chunk_size=1), uld_loss(s, t, 2.0, chunk_size=1000))
    # ULD sees only the sorted probabilities: the same distribution over relabelled (and padded) tokens costs 0
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([s[..., perm], torch.full((2, 5, 4), -1e9, dtype=torch.float64)], -1)
    assert uld_loss(s, padded, 1.0).item() == pytest.approx(0.0, abs=1e-12)


def test_uld_is_a_built_in_kd_loss_and_refuses_unaligned_positions() -> None:
    assert get_loss("kd", "uld") is uld_loss
    assert any(i.name == "uld" and i.kind == "kd" for i in BUILTIN_LOSSES)
    with pytest.raises(ValueError, match=r"uld: student positions \(2, 5\) != teacher positions \(2, 4\)"):
        uld_loss(torch.zeros(2, 5, 7), torch.zeros(2, 4, 9))


def test_cross_tokenizer_rows_pair_marked_positions_in_order_truncated_to_the_shorter() -> None:
    logits_S = torch.arange(2 * 6 * 1, dtype=torch.float64).reshape(2, 6, 1).expand(2, 6, 3)
    logits_T = 100 + torch.arange(2 * 4 * 1, dtype=torch.float64).reshape(2, 4, 1).expand(2, 4, 5)
    mask_S = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]])
    mask_T = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])
    rows_S, rows_T = cross_tokenizer_rows(logits_S, logits_T, mask_S, mask_T)
    # sequence 0: student positions 1, 2 with teacher 0, 1; sequence 1: student 8, 9, 10 with teacher 105, 106, 107
    assert rows_S[:, 0].tolist() == [1, 2, 8, 9, 10]
    assert rows_T[:, 0].tolist() == [100, 101, 105, 106, 107]
    assert rows_S.shape == (5, 3) and rows_T.shape == (5, 5)


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=words[0]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # type: ignore[assignment]
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=words[0])


def tiny_gpt2(vocab: int) -> GPT2LMHeadModel:
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=16, n_embd=8, n_layer=1, n_head=2))


WORDS = ["<unk>", "the", "cat", "sat", "on", "a", "mat"]


def test_padded_vocabularies_are_cut_to_the_shared_prefix_with_one_line() -> None:
    assert padding_only(50257, 50304) and padding_only(151936, 152064)
    assert not padding_only(50257, 32000) and not padding_only(60, 70)
    prefix, lines = check_run_vocabularies("token_kl", tiny_gpt2(50), [tiny_gpt2(64), tiny_gpt2(64)], None)
    assert prefix == 50
    line = (
        "vocabularies: the teacher's logits have 64 entries and the student's 50; the sizes differ only by padding "
        "(name the tokenizers to check their tokens), so KD compares the shared first 50 entries"
    )
    assert lines == [line]
    same = (word_tokenizer(WORDS), word_tokenizer(WORDS))
    prefix, lines = check_run_vocabularies("kl", tiny_gpt2(7), [tiny_gpt2(20)], same)
    assert prefix == 7 and "the tokenizers are the same (7 tokens)" in lines[0]
    assert check_run_vocabularies("kl", tiny_gpt2(7), [tiny_gpt2(7)], same) == (None, [])


def test_different_tokenizers_are_refused_naming_sizes_first_differences_and_the_fix() -> None:
    other = word_tokenizer(["<unk>", "the", "dog", "sat", "under", "a", "mat", "today"])
    differs = compare_tokenizers(word_tokenizer(WORDS), other)
    assert differs == (
        "the teacher's tokenizer has 7 tokens and the student's 8; first differences: id 2: teacher 'cat', "
        "student 'dog'; id 4: teacher 'on', student 'under'; id 7: teacher None, student 'today'"
    )
    with pytest.raises(VocabularyMismatchError, match=r"first differences: id 2.*kdLossType 'uld'.*split batches"):
        check_run_vocabularies("token_kl", tiny_gpt2(8), [tiny_gpt2(7)], (word_tokenizer(WORDS), other))
    # the same sizes too: the tokens are compared
    with pytest.raises(VocabularyMismatchError, match="first differences"):
        check_run_vocabularies("kl", tiny_gpt2(8), [tiny_gpt2(8)], (word_tokenizer([*WORDS, "x"]), other))
    # sizes alone, more than padding apart
    with pytest.raises(VocabularyMismatchError, match=r"have 40 entries and the student's 100, more than padding"):
        check_run_vocabularies("kl", tiny_gpt2(100), [tiny_gpt2(40)], None)
    # the cross-tokenizer loss takes them as they are
    assert check_run_vocabularies("uld", tiny_gpt2(8), [tiny_gpt2(7)], (word_tokenizer(WORDS), other)) == (None, [])


def test_a_tokenizer_larger_than_the_smaller_head_is_refused() -> None:
    same = (word_tokenizer(WORDS), word_tokenizer(WORDS))
    with pytest.raises(VocabularyMismatchError, match=r"their tokenizer has 7 tokens.*resize_token_embeddings\(7\)"):
        check_run_vocabularies("kl", tiny_gpt2(5), [tiny_gpt2(64)], same)


def test_cached_top_k_targets_cut_a_padded_student_to_the_shared_prefix() -> None:
    from textbrewer_worker.training.objective import Objective

    spec = {
        "kind": "kd",
        "lossType": "kl",
        "temperature": 2.0,
        "temperatureScheduler": {"type": "none"},
        "probabilityShift": False,
        "required": False,
        "weight": 1.0,
        "weightScheduler": "none",
    }
    objective = Objective([spec], torch.device("cpu"), [])
    g = torch.Generator().manual_seed(3)
    student = torch.randn(4, 64, generator=g, dtype=torch.float64)  # padded: 50 real entries, 14 of padding
    teacher = torch.randn(4, 50, generator=g, dtype=torch.float64)
    logprobs, ids = torch.log_softmax(teacher / 2.0, -1).topk(8, -1)
    topk = {"targets": [logprobs, ids], "tail": "uniform", "support": "teacher"}

    def kd(logits: torch.Tensor, prefix: int | None) -> float:
        objective.kd.vocab_prefix = prefix  # type: ignore[union-attr]
        inputs = objective.inputs({"logits": [logits]}, [], {"kdWeight": 1.0}, None, topk)
        return float(objective.loss(inputs)[1]["unweighted_kd_loss"])

    # the padding's 14 entries take no part: the same loss as a student with the shared 50 entries only
    assert kd(student, 50) == pytest.approx(kd(student[:, :50], None), abs=1e-12)
    assert kd(student, 50) != pytest.approx(kd(student, None), abs=1e-6)
    # a cached id in the padding (or past a student's head) is refused with the fix, not an index error
    topk["targets"] = [logprobs, ids.clone().fill_(55)]
    with pytest.raises(ValueError, match=r"cached teacher id is 55, in the padding past the 50 entries.*resize"):
        kd(student[:, :50], 50)
    with pytest.raises(ValueError, match=r"cached teacher id is 55 but the student's logits have 50 entries"):
        kd(student[:, :50], None)


def test_causal_lm_kd_cuts_padded_vocabularies_to_the_shared_prefix() -> None:
    from textbrewer_worker.terms.base import TermInputs
    from textbrewer_worker.terms.causal_lm_kd import CausalLmKdTerm

    spec = {"loss": "kl", "temperature": 2.0, "beta": 0.5, "alpha": 0.1, "chunkSize": None, "weight": 1.0}
    term = CausalLmKdTerm(spec, 0, torch.device("cpu"))
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 5, 50, generator=g), torch.randn(2, 5, 64, generator=g)
    labels = torch.randint(0, 50, (2, 5), generator=g)

    def kd(logits_S: torch.Tensor, logits_T: torch.Tensor) -> float:
        value, _ = term(TermInputs({"logits": [logits_S], "labels": [labels]}, [], None, [logits_T], None, {}))
        return float(value)  # type: ignore[arg-type]

    term.vocab_prefix = 50
    assert kd(s, t) == pytest.approx(kd(s, t[..., :50]), abs=1e-7)
    assert kd(torch.cat([s, t[..., 50:]], -1), t[..., :50]) == pytest.approx(kd(s, t[..., :50]), abs=1e-7)


def test_teachers_of_padded_heads_are_averaged_over_the_shared_prefix_and_other_widths_refused() -> None:
    from textbrewer_worker.training.objective import target_logits_of

    torch.manual_seed(0)
    a, b = torch.randn(2, 3, 6, dtype=torch.float64), torch.randn(2, 3, 8, dtype=torch.float64)
    mean = target_logits_of([{"logits": [a]}, {"logits": [b]}], width=6)
    assert mean is not None
    assert torch.equal(mean[0], (a + b[..., :6]) / 2)
    with pytest.raises(ValueError, match=r"logits: the teachers give logits of 6, 8 entries"):
        target_logits_of([{"logits": [a]}, {"logits": [b]}])
    with pytest.raises(ValueError, match=r"6, 8 entries"):
        target_logits_of([{"logits": [a]}, {"logits": [b]}], width=7)
