"""labkit.regularisation: augmentation before the forward pass, dropout inside it (train mode only), weight decay
inside the optimizer step (AdamW against L2 in the loss, matched to torch.optim), the verdicts both ways, and
chapter 3.5b's exercises."""
import math
import random

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from labkit import regularisation as reg
from labkit.data.reviews import ASPECTS, PRODUCTS, SEEN_WORDS, balanced_subset, make_reviews
from labkit.labs import ch03_5b
from labkit.nn import SequenceClassifier
from labkit.train import History
from test_labs import refuses, states_answer

POSITIVE = set(SEEN_WORDS[1]["adj"]) | set(SEEN_WORDS[1]["phrase"])
NEGATIVE = set(SEEN_WORDS[0]["adj"]) | set(SEEN_WORDS[0]["phrase"])


def tiny_bert(seed=0, dropout=0.1):
    torch.manual_seed(seed)
    return BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                vocab_size=100, max_position_embeddings=32, hidden_dropout_prob=dropout,
                                attention_probs_dropout_prob=dropout))


def batch(n=6, length=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (n, length), generator=g)
    return ids, torch.ones_like(ids), torch.arange(n) % 2


# ----------------------------------------------------------------------------- augmentation
def test_word_dropout_deletes_words_and_keeps_one():
    rng = random.Random(0)
    text = "the battery of this phone is excellent."
    assert reg.WordDropout(0.0)(text, rng) == text
    outs = [reg.WordDropout(0.5)(text, rng) for _ in range(200)]
    assert all(1 <= len(o.split()) <= 7 and set(o.split()) <= set(text.split()) for o in outs)
    assert len(set(outs)) > 10 and any(len(o.split()) == 1 for o in [reg.WordDropout(0.99)(text, rng) for _ in range(20)])
    with pytest.raises(ValueError, match="p \\(word dropout\\)"):
        reg.WordDropout(1.0)


def test_sentiment_swap_keeps_the_label_and_the_case():
    rng = random.Random(0)
    swap = reg.SynonymSwap(reg.SENTIMENT_SYNONYMS)
    for text, label in make_reviews(seed=0).train[:200]:
        out = swap(text, rng)
        found = reg.words_in([out], POSITIVE | NEGATIVE)
        assert found and found <= (POSITIVE if label == 1 else NEGATIVE), (text, out)
        assert out[0].isupper() == text[0].isupper()
    assert reg.SynonymSwap(reg.SENTIMENT_SYNONYMS, p=0.0)("What a great phone!", rng) == "What a great phone!"
    outs = {swap("What a great phone!", rng) for _ in range(100)}
    assert len(outs) > 5 and all(o.startswith("What a ") and o.endswith(" phone!") for o in outs)
    with pytest.raises(ValueError, match="groups"):
        reg.SynonymSwap([("alone",)])


def test_content_swap_changes_only_label_free_words():
    rng = random.Random(1)
    swap = reg.SynonymSwap(reg.CONTENT_SYNONYMS)
    text = "The build quality of this kettle is excellent."
    outs = [swap(text, rng) for _ in range(50)]
    assert all(o.endswith(" is excellent.") for o in outs)
    assert {reg.words_in([o], ASPECTS).pop() for o in outs} > {"build quality"}     # multi-word aspects swap too
    assert all(len(reg.words_in([o], PRODUCTS)) == 1 for o in outs)


def test_augment_is_a_collate_that_augments_every_batch_afresh():
    from labkit.transfer import Encoders
    tok = Encoders("all-MiniLM-L6-v2", quiet=True).tokenizer
    examples = [("what a great phone!", 1), ("the lamp is awful.", 0)]
    collate = reg.Augment(tok, reg.SynonymSwap(reg.SENTIMENT_SYNONYMS), seed=0)
    ids, mask, labels = collate(examples)
    assert ids.shape == mask.shape and labels.tolist() == [1, 0]
    firsts = {tuple(collate(examples)[0][0].tolist()) for _ in range(20)}
    assert len(firsts) > 3                                  # a fresh augmentation each call
    again = reg.Augment(tok, reg.SynonymSwap(reg.SENTIMENT_SYNONYMS), seed=0)(examples)[0]
    assert torch.equal(again, ids)                          # seeded


def test_words_in_and_one_label_words():
    examples = [("The kettle is great.", 1), ("The kettle is bad.", 0), ("My lamp is nice, i love it.", 1)]
    assert reg.words_in(examples, ["kettle", "lamp", "tent"]) == {"kettle", "lamp"}
    assert reg.words_in(examples, ["i love it", "love"]) == {"i love it"}    # the longest entry wins
    assert reg.one_label_words(examples, PRODUCTS) == {"lamp"}


# ----------------------------------------------------------------------------- dropout
def test_set_dropout_turns_train_mode_into_eval_mode_and_matches_a_config_without_dropout():
    torch.manual_seed(0)
    model = SequenceClassifier(tiny_bert(), n_classes=2)
    ids, mask, _ = batch()
    on = reg.dropout_outputs(model, ids, mask)
    assert on["train vs train"] > 0 and on["eval vs eval"] == 0 and on["train vs eval"] > 0
    assert reg.set_dropout(model, 0.0) == 1 + 1 + 2 * 3      # head, embeddings, 3 per layer
    off = reg.dropout_outputs(model, ids, mask)
    assert off["train vs train"] == 0 and off["train vs eval"] < 1e-6
    # the reference: the same weights in a model whose config has no dropout, in train mode
    reference = tiny_bert(dropout=0.0)
    reference.load_state_dict(model.encoder.state_dict())
    reference.train(); model.train()
    with torch.no_grad():
        torch.testing.assert_close(model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   reference(input_ids=ids, attention_mask=mask).last_hidden_state)
    with pytest.raises(ValueError, match="p \\(dropout\\)"):
        reg.set_dropout(model, 1.0)


# ----------------------------------------------------------------------------- weight decay
def test_coupled_decay_is_torch_adam_weight_decay_and_decoupled_is_adamw_on_the_matrices():
    ids, mask, y = batch()
    torch.manual_seed(0)
    models = [reg.freeze_unused_pooler(SequenceClassifier(tiny_bert(dropout=0.0), n_classes=2)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    for m in models:
        reg.set_dropout(m, 0.0)     # the same forward pass in both
    ours, loss_fn = reg.optimizer_for(models[0], 1e-3, 0.1, "coupled")
    decayed = {id(p) for p in reg.split_decay(models[1])[0]}
    params = list(models[1].parameters())
    ref = torch.optim.Adam([{"params": [p for p in params if id(p) in decayed], "weight_decay": 0.1},
                            {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0}], lr=1e-3)
    for _ in range(3):
        for model, opt, fn in ((models[0], ours, loss_fn), (models[1], ref, F.cross_entropy)):
            opt.zero_grad()
            fn(model(ids, mask), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # decoupled: a zero-gradient step multiplies the matrices by (1 - lr·λ) and leaves biases and norms alone
    model = SequenceClassifier(tiny_bert(dropout=0.0), n_classes=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt, fn = reg.optimizer_for(model, 1e-2, 0.5, "decoupled")
    assert fn is F.cross_entropy
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[n] * (1 - 5e-3) if p.ndim >= 2 else before[n])
    with pytest.raises(ValueError, match="decay must be one of"):
        reg.optimizer_for(model, 1e-3, 0.1, "l1")


def test_one_step_moves_untouched_rows_by_lr_lambda_or_by_adams_step():
    torch.manual_seed(0)
    model = SequenceClassifier(tiny_bert(), n_classes=2)
    rows = reg.decay_in_one_step(model, batch(), lr=1e-3, weight_decay=0.01)
    key = "rows of tokens not in the batch: Σ|Δθ|/Σ|θ|"
    none, decoupled, coupled = (r[key] for r in rows)
    assert none == 0 and decoupled == pytest.approx(1e-5, rel=1e-2) and coupled > 100 * decoupled   # float32
    assert all(r["rows of tokens in the batch: Σ|Δθ|/Σ|θ|"] > 0 for r in rows)


def test_decay_factor_and_the_lambda_for_a_given_shrink():
    lrs = [1e-4] * 10 + [5e-5] * 10
    assert reg.decay_factor(lrs, 0.0) == 1.0
    assert reg.decay_factor(lrs, 0.01) == pytest.approx(math.prod(1 - lr * 0.01 for lr in lrs))
    lam = reg.weight_decay_for(lrs, 0.01)
    assert reg.decay_factor(lrs, lam) == pytest.approx(0.99, rel=1e-9)
    assert reg.weight_decay_for(lrs, 0.05) > lam
    with pytest.raises(ValueError, match="shrink"):
        reg.weight_decay_for(lrs, 0.0)
    with pytest.raises(ValueError, match="lrs must contain"):
        reg.weight_decay_for([0.0], 0.01)


# ----------------------------------------------------------------------------- runs and verdicts
def _runs(name, test, val=None, train=1.0, norm_after=100.0, moved=1.0):
    return [reg.RegResult(name, seed, {"train": train, "val": (val or test)[seed], "test": t}, 100.0, norm_after,
                          moved, 1.0, History()) for seed, t in enumerate(test)]


def test_effect_verdicts_go_both_ways():
    base = _runs("baseline", [0.80, 0.90, 0.85])
    helps = _runs("helps", [0.85, 0.95, 0.91])
    hurts = _runs("hurts", [0.70, 0.81, 0.74])
    noise = _runs("noise", [0.86, 0.85, 0.86])
    lines = reg.effect_verdicts(base + helps + hurts + noise, "baseline")
    assert lines[0].startswith("helps: test accuracy +5.3 points") and "it helps at this scale" in lines[0]
    assert lines[1].startswith("hurts: test accuracy -10.0 points") and "it hurts at this scale" in lines[1]
    assert "no measurable effect" in lines[2] and "per seed +6.0, -5.0, +1.0" in lines[2] and "interval includes 0" in lines[2]
    # the interval uses Student's t: 4.30 standard errors for 3 seeds (2 would call this one an effect)
    d = [4.0, 1.0, 1.0]
    wide = reg.effect_verdicts(base + _runs("x", [0.80 + d[0] / 100, 0.91, 0.86]), "baseline")
    se = (sum((x - 2) ** 2 for x in d) / 2) ** 0.5 / 3 ** 0.5
    assert f"± {4.3027 * se:.1f}" in wide[0] and "no measurable effect" in wide[0]
    same = reg.effect_verdicts(base + _runs("same", [0.80, 0.90, 0.85]), "baseline")
    assert same[0] == "same: test accuracy +0.0 points against 'baseline': the same accuracy at every one of the 3 seeds, no effect at all."
    one = reg.effect_verdicts(_runs("baseline", [0.8]) + _runs("x", [0.9]), "baseline")
    assert "one seed" in one[0] and "no verdict" in one[0]
    small = reg.effect_verdicts(base + _runs("tiny", [0.805, 0.905, 0.855]), "baseline")   # consistent but < 1 point
    assert "no measurable effect at this scale (under 1 point)" in small[0]
    with pytest.raises(ValueError, match="baseline must be one of"):
        reg.effect_verdicts(base, "nothing")


def test_norm_and_fit_verdicts_go_both_ways():
    base = _runs("baseline", [0.8, 0.9], norm_after=100.0, moved=1.0)
    decayed = _runs("tiny decay", [0.8, 0.9], norm_after=99.999, moved=1.0)
    strong = _runs("strong decay", [0.8, 0.9], norm_after=97.0, moved=2.0)
    lines = reg.norm_verdicts(base + decayed + strong, "baseline")
    assert lines[0].startswith("baseline: ‖θ‖ changed by +0.0000%")
    assert "-0.0010% beyond 'baseline'" in lines[1] and "far smaller than" in lines[1]
    assert "-3.0000% beyond" in lines[2] and "larger than" in lines[2]
    assert "baseline fits its labelled examples" in reg.fit_verdict(base, "baseline")
    under = reg.fit_verdict(_runs("baseline", [0.6, 0.6], train=0.8), "baseline")
    assert "does NOT fit" in under and "under-trained" in under


def test_gap_verdict_splits_the_gap():
    seen_part = _runs("baseline", [0.80, 0.90], val=[0.85, 0.95])     # val gap 10, test gap 15
    assert "train - val gap 10.0 points, train - test gap 15.0 points" in reg.gap_verdict(seen_part, "baseline")
    assert "account for 67% of the test gap: most of it is the usual" in reg.gap_verdict(seen_part, "baseline")
    words = _runs("baseline", [0.70, 0.80], val=[0.98, 0.98])
    assert "only 8% of the test gap: most of it comes from the held-out words" in reg.gap_verdict(words, "baseline")
    assert "no train-test gap" in reg.gap_verdict(_runs("baseline", [1.0, 1.0], val=[1.0, 1.0]), "baseline")


def test_results_table_and_paired_difference():
    runs = _runs("baseline", [0.8, 0.9]) + _runs("x", [0.85, 0.85])
    table = reg.results_table(runs)
    assert list(table.index) == ["baseline", "x"] and table.loc["x", "test acc"] == 0.85
    assert table.loc["baseline", "train - test (points)"] == 15.0
    assert reg.paired_difference(runs, "x", "baseline", "test") == pytest.approx([0.05, -0.05])


def test_run_setting_trains_scores_and_refuses_bad_input():
    from labkit.transfer import Encoders
    encoders = Encoders("all-MiniLM-L6-v2", quiet=True)
    data = make_reviews(seed=0, n_train=20, n_val=4, n_test=4)
    examples = balanced_subset(data.train, 4)
    settings = reg.book_settings()
    assert list(settings) == list(reg.SETTINGS)
    r = reg.run_setting(settings["swap_sentiment"], encoders, examples, {"test": data.test}, epochs=1, batch_size=4)
    assert set(r.accuracy) == {"train", "test"} and len(r.history.steps) == 1 and r.moved > 0
    l2 = reg.run_setting(settings["l2"], encoders, examples, {"test": data.test}, epochs=1, batch_size=4)
    assert l2.norm_after < r.norm_after                      # L2 through Adam pulls every matrix towards 0
    with pytest.raises(TypeError, match="setting must be a Setting"):
        reg.run_setting("baseline", encoders, examples, {})
    with pytest.raises(ValueError, match="batch_size must be at most"):
        reg.run_setting(settings["baseline"], encoders, examples, {}, batch_size=8)
    with pytest.raises(ValueError, match="decay must be one of"):
        reg.Setting("x", decay="both")


# ----------------------------------------------------------------------------- chapter 3.5b's exercises
def test_ch03_5b_exercises_accept_the_right_answers_and_refuse_the_wrong_ones():
    examples = balanced_subset(make_reviews(seed=0).train, 16, seed=0)
    ex = ch03_5b.exercises(examples)
    adjectives = set(ch03_5b.SEEN_ADJECTIVES)
    shown = reg.words_in(examples, adjectives)
    by_label = [reg.words_in([e for e in examples if e[1] == y], PRODUCTS + ASPECTS) for y in (0, 1)]
    right = {"3.5b.1": 1e-4, "3.5b.2": 1 / 0.9, "3.5b.3": len(adjectives - shown), "3.5b.4": len(by_label[0] ^ by_label[1])}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    # 3.5b.1: AdamW's step (the decoupled answer), no move, the gradient λθ, lr·λ
    assert refuses(ex["3.5b.1"], 1e-4 * 0.01 * 0.05, 0, 0.01 * 0.05, 1e-6)
    # 3.5b.2: no rescaling, the old (scale at test time) convention, 1 + p, p
    assert refuses(ex["3.5b.2"], 1.0, 0.9, 1.1, 0.1)
    # 3.5b.3: the whole list, the ones shown, none, the held-out count
    assert refuses(ex["3.5b.3"], 20, len(shown), 0) and len(shown) not in (0, 20)
    # 3.5b.4: every product/aspect seen, those seen under both labels, none, another seed's subset (ignored argument)
    other = balanced_subset(make_reviews(seed=0).train, 16, seed=1)
    assert refuses(ex["3.5b.4"], len(by_label[0] | by_label[1]), len(by_label[0] & by_label[1]), 0)
    assert len(reg.one_label_words(other, PRODUCTS + ASPECTS)) != right["3.5b.4"]
    assert not ex["3.5b.4"].check(len(reg.one_label_words(other, PRODUCTS + ASPECTS)))


def test_ch03_5b_exercises_follow_their_arguments():
    examples = balanced_subset(make_reviews(seed=0).train, 8, seed=2)
    ex = ch03_5b.exercises(examples, lr=1e-3, p=0.5)
    assert ex["3.5b.1"].check(1e-3) and not ex["3.5b.1"].check(1e-4)
    assert ex["3.5b.2"].check(2.0)
    assert ex["3.5b.3"].check(20 - len(reg.words_in(examples, ch03_5b.SEEN_ADJECTIVES)))
