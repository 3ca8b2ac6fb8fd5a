"""Lab 6: pick the right tool. One panel over task x strategy x label count, one table of every run, and the
rule that reads a choice off that table.

Three tasks of chapter 6, each with real pretrained weights offline:

* ``"sentiment"``: the generated reviews (chapter 2; the test split is written with sentiment words the training
  split never uses), all-MiniLM-L6-v2 + a linear head on the mean of its token vectors; test accuracy.
* ``"entities"``: BIO named entities (chapter 6.1a; test names never occur in training), all-MiniLM-L6-v2 + one
  linear layer applied at every token; entity-level F1 (equal to ``seqeval``'s, :func:`labkit.ner.entity_scores`).
* ``"digits"``: scikit-learn's 8 x 8 digits upsampled to 32 x 32 (chapter 6.2), EfficientNet-Lite0 (ImageNet) + a
  new head; test accuracy.

Four strategies (:data:`STRATEGIES`), which differ in where the weights start and what trains:

* *linear probe*: the pretrained network frozen, only the new head trains (for digits on the pooled features,
  computed once, since the frozen network gives the same features at every step, and standardised);
* *LoRA*: rank-8 updates of the attention's query and value projections (alpha 16) and the head; only for the
  two Transformer tasks (EfficientNet-Lite0 has no attention projections);
* *full fine-tuning*: every weight trains, from the pretrained values;
* *from scratch*: the same architecture with random weights, every weight trains.

Every run of a task gets the same budget in optimisation steps, the same batch size and, for one seed, the same
labelled examples. :func:`pick` is the lab's rule: the strategy with the fewest trainable parameters whose test
score is within a tolerance of the best. :func:`verdict_lines` and :func:`trend_line` word what a table of runs
measured; the wording follows the numbers. Every expected answer of :func:`exercises` is computed from the lab's
data, models or runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import nn

from ..check import number, one_of, whole_number
from ..data.digits import class_rows
from ..data.reviews import balanced_subset
from ..exercises import Exercise
from ..lora import LoRALinear
from ..ner import TokenClassifier, encode_tagged, entity_scores, predict_tags, tagger_forward, token_loss
from ..nn import SequenceClassifier, count_parameters
from ..strategies import LEARNING_RATES, STRATEGIES as STRATEGY_FUNCTIONS
from ..train import accuracy, evaluate, fit
from ..transfer import encode_examples
from .. import vision

__all__ = ["TASKS", "STRATEGIES", "LABEL_COUNTS", "SUGGESTED_LR", "LORA", "TOLERANCE", "LEVEL", "Task",
           "SentimentTask", "EntitiesTask", "DigitsTask", "load_tasks", "ToolLab", "panel", "pick", "score_gap", "compare",
           "verdict_lines", "fit_line", "trend_line", "all_o_word_accuracy", "first_split_sentence", "exercises"]

STRATEGIES = ("linear probe", "LoRA", "full fine-tuning", "from scratch")
LABEL_COUNTS = (10, 20, 50, 100, 200, "all")      # labelled training examples (balanced over the classes)
LORA = {"r": 8, "alpha": 16, "targets": ("query", "value")}
TOLERANCE = 0.02   # pick: within 2 points of the best test score counts as "as good"
LEVEL = 0.03       # compare: one seed per run, so differences under 3 points are read as level
# Where each strategy starts, per kind of network. The fewer weights train, the larger the step they take;
# from scratch has no pretrained weights to protect. Text: chapter 3.5's table (labkit.strategies.LEARNING_RATES);
# digits: chapter 6.2's rates (the head of a fine-tuned CNN 10x the body's).
SUGGESTED_LR = {
    "text": {"linear probe": LEARNING_RATES["linear_probe"], "LoRA": LEARNING_RATES["lora"],
             "full fine-tuning": LEARNING_RATES["full"], "from scratch": 5e-4},
    "image": {"linear probe": 1e-2, "full fine-tuning": 1e-4, "from scratch": 3e-3},
}
_STRATEGY_IDS = {"linear probe": "linear_probe", "LoRA": "lora", "full fine-tuning": "full", "from scratch": "full"}


@dataclass
class Outcome:
    """What one training run measured."""
    train: float          # the score on the labelled examples it trained on
    test: float
    trainable: int
    total: int


class Task:
    """One task of the panel: its data, its network, its metric, and how a strategy trains on it."""
    name: str
    metric: str
    network: str
    kind: str             # "text" or "image": which table of SUGGESTED_LR applies
    strategies: tuple[str, ...] = STRATEGIES

    def available(self) -> int:
        """How many labelled training examples there are."""
        raise NotImplementedError

    def labelled(self, labels: int | str) -> int:
        """The number of labelled examples a label count stands for ("all": every one there is)."""
        return self.available() if labels == "all" else labels

    def refusal(self, strategy: str, labels: int | str) -> str | None:
        """Why ``strategy`` with ``labels`` cannot run on this task, or None."""
        if strategy not in self.strategies:
            why = (f"LoRA adds low-rank updates to a Transformer's attention projections, and {self.network} is a "
                   f"convolutional network with none" if strategy == "LoRA" else f"{strategy} does not apply")
            return f"strategy {strategy!r} does not apply to {self.name}: {why}; choose one of {', '.join(self.strategies)}"
        if labels != "all" and labels > self.available():
            return (f"labels must be at most {self.available()} for {self.name} (its labelled training examples at "
                    f"this profile) or 'all'; got {labels}")
        return None

    def train(self, strategy: str, labels: int | str, *, steps: int, lr: float, batch_size: int, seed: int,
              callbacks=()) -> Outcome:
        raise NotImplementedError


def _prepared(model: nn.Module, strategy: str) -> nn.Module:
    """``model`` (an encoder + a new head) with ``strategy`` applied: what trains and what is frozen."""
    options = LORA if strategy == "LoRA" else {}
    STRATEGY_FUNCTIONS[_STRATEGY_IDS[strategy]](model, lr=None, **options)
    return model


class _TextTask(Task):
    kind, network = "text", "all-MiniLM-L6-v2"

    def __init__(self, encoders):
        self.encoders = encoders

    def encoder(self, strategy: str, seed: int) -> nn.Module:
        """A fresh copy of the pretrained encoder, or (from scratch) the same architecture with random weights."""
        return self.encoders.encoder("scratch" if strategy == "from scratch" else "pretrained", seed=seed)


class SentimentTask(_TextTask):
    """Reviews: all-MiniLM-L6-v2 + a linear head on the masked mean of the token vectors (chapter 2's classifier)."""
    name, metric = "sentiment", "test accuracy"

    def __init__(self, encoders, reviews):
        super().__init__(encoders)
        self.reviews = reviews
        self.test = encode_examples(encoders.tokenizer, reviews.test)

    def available(self) -> int:
        return len(self.reviews.train)

    def model(self, strategy: str, seed: int = 0) -> SequenceClassifier:
        torch.manual_seed(seed)
        return _prepared(SequenceClassifier(self.encoder(strategy, seed), n_classes=2), strategy)

    def train(self, strategy, labels, *, steps, lr, batch_size, seed, callbacks=()) -> Outcome:
        train = encode_examples(self.encoders.tokenizer, balanced_subset(self.reviews.train, self.labelled(labels), seed))
        model = self.model(strategy, seed)
        fit(model, train, steps=steps, batch_size=min(batch_size, len(train)), lr=lr, seed=seed, callbacks=callbacks,
            name=f"{self.name} · {strategy}", progress=False)
        score = lambda data: evaluate(model, data, batch_size=64, metrics={"acc": accuracy})["acc"]  # noqa: E731
        return Outcome(score(train), score(self.test), count_parameters(model, trainable_only=True),
                       count_parameters(model))


class EntitiesTask(_TextTask):
    """BIO named entities: all-MiniLM-L6-v2 + one linear layer at every token (chapter 6.1a's tagger)."""
    name, metric = "entities", "entity F1"

    def __init__(self, encoders, ner_data):
        super().__init__(encoders)
        self.data, self.tags = ner_data, ner_data.tags
        self.test = encode_tagged(encoders.tokenizer, ner_data.test, self.tags)

    def available(self) -> int:
        return len(self.data.train)

    def sentences(self, labels: int | str, seed: int) -> list:
        """``labels`` training sentences drawn with ``seed`` (a smaller count is a prefix of a larger one)."""
        order = np.random.default_rng(seed).permutation(self.available())
        return [self.data.train[i] for i in sorted(order[:self.labelled(labels)])]

    def model(self, strategy: str, seed: int = 0) -> TokenClassifier:
        torch.manual_seed(seed)
        return _prepared(TokenClassifier(self.encoder(strategy, seed), n_tags=len(self.tags)), strategy)

    def f1(self, model: TokenClassifier, sentences, data) -> float:
        return entity_scores([s.tags for s in sentences], predict_tags(model, data, self.tags), invalid="repair").f1

    def train(self, strategy, labels, *, steps, lr, batch_size, seed, callbacks=()) -> Outcome:
        sentences = self.sentences(labels, seed)
        train = encode_tagged(self.encoders.tokenizer, sentences, self.tags)
        model = self.model(strategy, seed)
        fit(model, train, steps=steps, batch_size=min(batch_size, len(train)), lr=lr, forward=tagger_forward,
            loss_fn=token_loss, seed=seed, callbacks=callbacks, name=f"{self.name} · {strategy}", progress=False)
        return Outcome(self.f1(model, sentences, train), self.f1(model, self.data.test, self.test),
                       count_parameters(model, trainable_only=True), count_parameters(model))


class DigitsTask(Task):
    """Digits upsampled to ``size`` x ``size``: EfficientNet-Lite0 (ImageNet weights) + a new head (chapter 6.2)."""
    name, metric, network, kind = "digits", "test accuracy", "EfficientNet-Lite0", "image"
    strategies = ("linear probe", "full fine-tuning", "from scratch")

    def __init__(self, splits, size: int = 32):
        from ..data.digits import upsample
        self.splits, self.size = splits, size
        self.arms = vision.Lite0Arms(size=size)
        self.images = vision.Inputs(*[(upsample(getattr(splits, p).images, size), torch.as_tensor(getattr(splits, p).labels))
                                      for p in ("train", "val", "test")])

    def available(self) -> int:
        return len(self.splits.train)

    def refusal(self, strategy: str, labels: int | str) -> str | None:
        if labels != "all" and labels % 10:
            return f"labels must be a multiple of 10 for digits (the same number of each of the 10 classes); got {labels}"
        return super().refusal(strategy, labels) or self._per_class_refusal(labels)

    def _per_class_refusal(self, labels) -> str | None:
        most = int(np.bincount(self.splits.train.labels).min())
        if labels != "all" and labels // 10 > most:
            return f"labels must be at most {10 * most} for digits ({most} of the rarest class) or 'all'; got {labels}"
        return None

    def rows(self, labels: int | str, seed: int) -> np.ndarray:
        """The training rows of ``labels`` labelled digits: ``labels // 10`` of every class, drawn with ``seed``."""
        return class_rows(self.splits.train.labels, None if labels == "all" else labels // 10, seed=seed)

    @property
    @cache
    def features(self) -> vision.Inputs:
        """Pooled ImageNet features of every digit, computed once (what the frozen network gives at every step),
        standardised with the training split's mean and standard deviation of each feature (as chapter 6.2's
        probe does: the raw features are about 0.03 in size, and a head on them learns slowly)."""
        raw = [(self.arms.features(x), y) for x, y in (self.images.train, self.images.val, self.images.test)]
        mean, std = raw[0][0].mean(0), raw[0][0].std(0) + 1e-6
        return vision.Inputs(*[((x - mean) / std, y) for x, y in raw])

    def model(self, strategy: str, seed: int = 0) -> nn.Module:
        """The classifier a strategy trains: the whole network (fine-tuning, from scratch) or the head alone (probe)."""
        if strategy == "linear probe":
            torch.manual_seed(seed)
            return nn.Linear(self.arms.width, self.arms.n_classes)
        return self.arms.classifier(strategy, seed)

    def train(self, strategy, labels, *, steps, lr, batch_size, seed, callbacks=()) -> Outcome:
        rows, model = self.rows(labels, seed), self.model(strategy, seed)
        name = f"{self.name} · {strategy}"
        if strategy == "linear probe":
            data = self.features
            fit(model, (data.train[0][rows], data.train[1][rows]), steps=steps, batch_size=min(batch_size, len(rows)),
                lr=lr, seed=seed, callbacks=callbacks, name=name, progress=False)
            score = lambda x, y: float((vision.predict(model, x) == y).float().mean())  # noqa: E731
            backbone = count_parameters(self.arms.pretrained) - count_parameters(self.arms.pretrained._fc)
            trainable, total = count_parameters(model), backbone + count_parameters(model)
        else:
            data = self.images
            settings = (dict(lr=lr, head_lr=10 * lr, batch_norm="frozen") if strategy == "full fine-tuning"
                        else dict(lr=lr, batch_norm="recalibrated"))
            vision.fine_tune(model, data.train[0][rows], data.train[1][rows], steps=steps, batch_size=batch_size,
                             seed=seed, callbacks=callbacks, name=name, **settings)
            score = lambda x, y: vision.accuracy_of(model, x, y)  # noqa: E731
            trainable, total = count_parameters(model, trainable_only=True), count_parameters(model)
        return Outcome(score(data.train[0][rows], data.train[1][rows]), score(*data.test), trainable, total)


TASKS = ("sentiment", "entities", "digits")


def load_tasks(encoders, *, n_test_reviews: int = 250, n_sentences: int = 300, n_test_sentences: int = 200,
               digits_per_class: int | None = None, size: int = 32, seed: int = 0) -> dict[str, Task]:
    """The three tasks on the chapters' data: the generated reviews and sentences, and scikit-learn's digits
    (``digits_per_class``: at most that many of each class in each split, for quick runs; None: all 1,797)."""
    from ..data.digits import load_digit_splits
    from ..data.nlp_tasks import make_ner
    from ..data.reviews import make_reviews
    return {"sentiment": SentimentTask(encoders, make_reviews(seed=seed, n_test=n_test_reviews)),
            "entities": EntitiesTask(encoders, make_ner(seed=seed, n_train=n_sentences, n_val=max(8, n_sentences // 4),
                                                        n_test=n_test_sentences)),
            "digits": DigitsTask(load_digit_splits(seed=seed).shrink(digits_per_class), size=size)}


class ToolLab:
    """The lab's runs: one call of :meth:`run` trains one (task, strategy, label count) and adds a row to one table."""

    def __init__(self, tasks: dict[str, Task], *, batch_size: int = 16, plot_every: int = 5):
        if not tasks:
            raise ValueError("tasks is empty: give at least one task")
        self.tasks, self.batch_size, self.plot_every = tasks, whole_number("batch_size", batch_size), plot_every
        self.rows: list[dict] = []
        self._handle = None

    def refusal(self, values: dict) -> str | None:
        """The panel's check across parameters: the task must exist, apply the strategy and have the labels."""
        task = values.get("task")
        if task not in self.tasks:
            return f"task must be one of {', '.join(self.tasks)}; got {task!r}"
        return self.tasks[task].refusal(values["strategy"], values["labels"])

    def lr(self, task: str, strategy: str, lr_factor: float = 1.0) -> float:
        """The learning rate a run uses: the strategy's suggested rate for this kind of network x ``lr_factor``."""
        return SUGGESTED_LR[self.tasks[task].kind][strategy] * number("lr_factor", lr_factor, minimum=0, open_low=True)

    def run(self, task: str, strategy: str, labels: int | str, steps: int, lr_factor: float = 1.0, seed: int = 0,
            plot=None) -> dict:
        """Train ``strategy`` on ``labels`` labelled examples of ``task`` for ``steps`` steps; return the table row.

        ``plot`` (a LiveLossPlot) follows the run; without one, the run draws its own live loss curve."""
        one_of("strategy", strategy, STRATEGIES)
        one_of("labels", labels, LABEL_COUNTS)
        whole_number("steps", steps)
        whole_number("seed", seed, minimum=0)
        problem = self.refusal({"task": task, "strategy": strategy, "labels": labels})
        if problem:
            raise ValueError(problem)
        t, lr = self.tasks[task], self.lr(task, strategy, lr_factor)
        if plot is None:
            from ..plots import LiveLossPlot
            plot = LiveLossPlot(title=f"{task} · {strategy} · {labels} labels · {steps} steps · lr {lr:.0e}",
                                every=self.plot_every, smooth=5, log_y=True)
        n = t.labelled(labels)
        start = time.perf_counter()
        out = t.train(strategy, labels, steps=steps, lr=lr, batch_size=self.batch_size, seed=seed,
                      callbacks=[plot.track(f"{task} · {strategy} · {n}")])
        row = {"run": len(self.rows) + 1, "task": task, "network": t.network, "strategy": strategy, "labels": n,
               "seed": seed, "steps": steps, "lr": lr, "metric": t.metric, "train score": round(out.train, 4),
               "test score": round(out.test, 4), "trainable params": out.trainable,
               "trainable %": round(100 * out.trainable / out.total, 3), "seconds": round(time.perf_counter() - start, 1)}
        self.rows.append(row)
        if self._handle is not None:
            self._handle.update(self.table())
        return row

    def grid(self, tasks, strategies, label_counts, *, steps: int, seed: int = 0) -> list[dict]:
        """Every applicable strategy of ``strategies`` at every label count, for each task; one loss plot per task."""
        from IPython.display import display

        from ..plots import LiveLossPlot
        rows = []
        for task in tasks:
            plot = LiveLossPlot(title=f"{task}: every strategy and label count ({steps} steps each)",
                                every=self.plot_every, smooth=5, log_y=True)
            for labels in label_counts:
                for strategy in strategies:
                    if strategy in self.tasks[task].strategies:
                        rows.append(self.run(task, strategy, labels, steps, seed=seed, plot=plot))
            display(self.table().query("task == @task"))
        return rows

    def table(self):
        import pandas as pd
        columns = ["run", "task", "network", "strategy", "labels", "seed", "steps", "lr", "metric", "train score",
                   "test score", "trainable params", "trainable %", "seconds"]
        return pd.DataFrame(self.rows, columns=columns).set_index("run")

    def show(self) -> None:
        """Draw the (empty) table here; every later run updates it in place."""
        from IPython.display import display
        self._handle = display(self.table(), display_id=True)


def panel(lab: ToolLab, steps: int, labels: int | str = 50):
    """Task, strategy, label count, steps, a learning-rate factor and a seed over :meth:`ToolLab.run`."""
    from ..widgets import Choice, Int, LogFloat, Panel
    return Panel(lab.run, title="Lab 6 · pick the right tool", validate=lab.refusal,
                 task=Choice(list(lab.tasks)), strategy=Choice(list(STRATEGIES), default="linear probe"),
                 labels=Choice(list(LABEL_COUNTS), default=labels), steps=Int(1, 400, steps),
                 lr_factor=LogFloat(0.1, 10.0, 1.0, label="lr × suggested"), seed=Int(0, 9, 0))


# ----------------------------------------------------------------------------- reading the table
def _group(table, task: str, labels: int):
    rows = table[(table["task"] == task) & (table["labels"] == labels)]
    if rows.empty:
        raise ValueError(f"no run of {task} with {labels} labels in the table: run it first")
    return rows


def pick(table, task: str, labels: int, tolerance: float = TOLERANCE) -> dict:
    """The lab's rule at one (task, labels): among the strategies run, the one with the fewest trainable parameters
    whose test score is within ``tolerance`` of the best (several runs of one strategy: their mean score)."""
    number("tolerance", tolerance, minimum=0)
    rows = _group(table, task, labels)
    by = rows.groupby("strategy").agg(score=("test score", "mean"), trainable=("trainable params", "max"))
    best = by["score"].idxmax()
    good = by[by["score"] >= by.loc[best, "score"] - tolerance - 1e-12]
    choice = good["trainable"].idxmin()
    return {"task": task, "labels": labels, "best": best, "best score": float(by.loc[best, "score"]),
            "choice": choice, "choice score": float(by.loc[choice, "score"]),
            "choice trainable": int(by.loc[choice, "trainable"]), "strategies": list(by.index)}


def score_gap(table, task: str, labels: int, strategy: str, baseline: str = "from scratch") -> float:
    """``strategy`` minus ``baseline``, test score in points (x 100), at one (task, labels)."""
    rows = _group(table, task, labels)
    means = rows.groupby("strategy")["test score"].mean()
    for s in (strategy, baseline):
        if s not in means:
            raise ValueError(f"no run of {s} on {task} with {labels} labels in the table: run it first")
    return float(100 * (means[strategy] - means[baseline]))


def compare(points: float, level: float = LEVEL) -> str:
    """Words for a difference in points between two runs of one seed each."""
    if points >= 100 * level:
        return f"ahead by {points:.1f} points"
    if points <= -100 * level:
        return f"behind by {-points:.1f} points"
    return f"level ({points:+.1f} points; with one seed per run, under {100 * level:.0f} points is read as level)"


def verdict_lines(table, tolerance: float = TOLERANCE, level: float = LEVEL) -> list[str]:
    """For every (task, labels) of the table with two strategies or more: the best, the pick, and the best
    pretrained strategy against from scratch, worded from the numbers."""
    lines = []
    for (task, labels), rows in table.groupby(["task", "labels"], sort=False):
        if rows["strategy"].nunique() < 2:
            continue
        p, metric = pick(table, task, labels, tolerance), rows["metric"].iloc[0]
        line = (f"{task}, {labels} labels ({metric}): best {p['best']} {p['best score']:.3f}; the pick (fewest "
                f"trainable parameters within {100 * tolerance:.0f} points of the best): {p['choice']} "
                f"{p['choice score']:.3f} with {p['choice trainable']:,} trainable")
        pretrained = [s for s in p["strategies"] if s != "from scratch"]
        if "from scratch" in p["strategies"] and pretrained:
            means = rows.groupby("strategy")["test score"].mean()
            top = means[pretrained].idxmax()
            line += f"; {top} against from scratch: {compare(100 * (means[top] - means['from scratch']), level)}"
        lines.append(line)
    return lines


def fit_line(table, threshold: float = 0.95) -> str:
    """Which runs fit the labelled examples they trained on (score >= ``threshold`` on them), and which did not:
    a run that does not fit them had too few steps or the wrong learning rate, so its test score says little
    about its strategy."""
    number("threshold", threshold, minimum=0, maximum=1)
    if table.empty:
        return "no runs yet"
    short = table[table["train score"] < threshold]
    head = (f"{len(table) - len(short)} of {len(table)} runs score at least {threshold:.2f} on their own labelled "
            "examples")
    if short.empty:
        return head + ": every run fits its training data"
    return head + "; these do not fit them: " + "; ".join(
        f"{r['task']} {r['strategy']} at {r['labels']} labels ({r['train score']:.3f})" for _, r in short.iterrows())


def trend_line(table, task: str, level: float = LEVEL) -> str:
    """How the best pretrained strategy's lead over from scratch changes from the fewest labels to the most."""
    gaps = {}
    for labels in sorted(table.loc[table["task"] == task, "labels"].unique()):
        means = _group(table, task, labels).groupby("strategy")["test score"].mean()
        pretrained = [s for s in means.index if s != "from scratch"]
        if "from scratch" in means and pretrained:
            gaps[int(labels)] = 100 * (means[pretrained].max() - means["from scratch"])
    if len(gaps) < 2:
        return f"{task}: from scratch and a pretrained strategy ran at fewer than two label counts; no trend to read"
    (few, a), (many, b) = next(iter(gaps.items())), list(gaps.items())[-1]
    change = b - a
    how = ("shrinks" if change <= -100 * level else "grows" if change >= 100 * level else "stays about the same")
    return (f"{task}: the best pretrained strategy's lead over from scratch {how}, from {a:+.1f} points at {few} "
            f"labels to {b:+.1f} at {many}")


# ----------------------------------------------------------------------------- exercises
def all_o_word_accuracy(sentences) -> float:
    """Word-level accuracy of the tagger that answers "O" for every word."""
    tags = [t for s in sentences for t in s.tags]
    return sum(t == "O" for t in tags) / len(tags)


def _shape(answer) -> tuple | None:
    try:
        return tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        return None


@torch.no_grad()
def _logit_shape(task: EntitiesTask, sentence) -> tuple[int, ...]:
    ids, mask, _ = encode_tagged(task.encoders.tokenizer, [sentence], task.tags).tensors
    return tuple(task.model("linear probe").eval()(ids, mask).shape[1:])    # drop the batch axis


def first_split_sentence(task: EntitiesTask) -> int:
    """The first test sentence with a word that the tokenizer cuts into several pieces (0 if none is)."""
    tok = task.encoders.tokenizer
    return next((i for i, s in enumerate(task.data.test) if any(len(tok.tokenize(w)) > 1 for w in s.words)), 0)


def exercises(lab: ToolLab, *, digits_labels: int = 50, sentence: int | None = None, gap_at: int = 20,
              pick_at: int = 20) -> dict[str, Exercise]:
    """Six questions. 6.1-6.4 read the lab's data and models; 6.5 and 6.6 read the table of runs, so run the
    cells that fill it first. ``digits_labels``: the label count of 6.1; ``sentence``: the test sentence of 6.3
    (None: :func:`first_split_sentence`); ``gap_at`` and ``pick_at``: the label counts 6.5 and 6.6 read."""
    digits, entities = lab.tasks["digits"], lab.tasks["entities"]
    s = entities.data.test[first_split_sentence(entities) if sentence is None else sentence]
    per_class = digits_labels // 10
    full_ft = cache(lambda: (digits_labels, count_parameters(digits.model("full fine-tuning"))))
    return {
        "6.1": Exercise(
            "6.1", f"Digits, full fine-tuning with {digits_labels} labels ({per_class} per class): how many labelled "
                   "images does it train on, and how many parameters does it update? Answer (images, parameters).",
            check_fn=lambda a: _shape(a) == full_ft(),
            hint="'Full' says which weights move, not how much data is used. Build the classifier the lab trains "
                 "(lab.tasks['digits'].model('full fine-tuning')) and count its parameters; the new head replaces "
                 "the 1,000-class ImageNet layer.",
            explain="Full fine-tuning updates every weight on whatever labels there are; which labels and how many "
                    "is a separate choice (the article's 9.3 confuses the two)."),
        "6.2": Exercise(
            "6.2", f"Entities, LoRA (r={LORA['r']} on query and value of every block): how many parameters train, "
                   f"the tagger's head over its {len(entities.tags)} tags included?",
            expected=cache(lambda: count_parameters(entities.model("LoRA"), trainable_only=True)),
            hint="Each adapted projection adds A (r x width) and B (width x r); count the projections; then the head, "
                 "one linear layer from the width to the number of tags, biases included.",
            explain="The same LoRA on the sentiment classifier differs only in its head: 2 outputs instead of one "
                    "per tag."),
        "6.3": Exercise(
            "6.3", f"The tagger on the test sentence {s.text!r}: what shape are its logits for that one sentence "
                   "(the batch axis dropped)? Answer a tuple.",
            check_fn=lambda a: _shape(a) == _logit_shape(entities, s),
            hint="An encoder writes one vector per token it reads, and the head maps each vector to a score per "
                 "tag. Which tokens does it read: words, or word pieces with the special tokens around them?",
            explain="One score per tag at every word piece; the prediction of a word is read at its first piece. "
                    "Nothing is generated: an encoder labels what it reads."),
        "6.4": Exercise(
            "6.4", "A tagger that answers 'O' for every word of the entities test split: what share of the words "
                   "does it tag correctly? (to 0.001)",
            expected=cache(lambda: all_o_word_accuracy(entities.data.test)), abs_tol=5e-4,
            hint="Count the test words whose gold tag is 'O' and divide by all test words.",
            explain="It finds no entity, so its entity F1 is 0: word accuracy rewards the majority tag, which is why "
                    "NER is scored on entities."),
        "6.5": Exercise(
            "6.5", f"From the table of runs: on sentiment with {gap_at} labels, full fine-tuning's test score minus "
                   "from scratch's, in points (x 100)? (to 0.1)",
            expected=lambda: score_gap(lab.table(), "sentiment", gap_at, "full fine-tuning"), abs_tol=0.051,
            hint=f"Find the two rows with task 'sentiment' and {gap_at} labels, one per strategy; subtract in the "
                 "order asked and multiply by 100.",
            explain="Both runs had the same examples, steps and batch size; the only difference is where the "
                    "weights started."),
        "6.6": Exercise(
            "6.6", f"Pick the right tool: on entities with {pick_at} labels, which strategy has the fewest trainable "
                   f"parameters among those within {100 * TOLERANCE:.0f} points of the best test score?",
            expected=lambda: pick(lab.table(), "entities", pick_at)["choice"],
            hint="First keep the strategies whose test score is at most 0.02 below the best one at that label count, "
                 "then compare their trainable parameters.",
            explain="The most accurate run is not always the right tool: within the noise of one seed, fewer "
                    "trainable parameters cost less memory, time and storage per task."),
    }
