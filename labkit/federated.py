"""Federated averaging (FedAvg) from scratch, on clients whose labels are skewed (non-IID).

McMahan, Moore, Ramage, Hampson & Agüera y Arcas, "Communication-Efficient Learning of Deep Networks
from Decentralized Data", AISTATS 2017, arXiv:1602.05629. Each round:

1. the server sends the global weights w to a fraction ``client_fraction`` of the K clients;
2. each chosen client k runs ``local_epochs`` of minibatch SGD on its own n_k examples, starting from w;
3. the server replaces w by the average of the clients' weights, weighted by n_k / Σ n_k
   (:func:`average_weights`).

The data never leaves a client; the weights travel, twice per client per round
(:func:`communication_bytes`). That is a cost, not a saving, and the weights (or gradients) that
travel still carry information about the data (:mod:`labkit.privacy` shows a gradient giving back
its input exactly): federated learning by itself is not a privacy guarantee.

Splits (:func:`iid_split`, :func:`label_skew_split`): the paper's pathological non-IID split sorts the
examples by label, cuts them into 2K shards and gives each client 2 shards, so most clients see only
two classes. Local steps on such a client pull the model towards its own classes, and the average
of models pulled apart is worse than one model trained on all the data: the experiment measures
how much, against centralised training with the same number of passes over the data.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .check import number, positive, probability, whole_number

__all__ = ["iid_split", "label_skew_split", "label_counts", "average_weights", "local_sgd", "FedRun", "fedavg",
           "centralised", "communication_bytes", "fedavg_verdict", "rounds_to_reach"]


def iid_split(n: int, n_clients: int, seed: int = 0) -> list[np.ndarray]:
    """Indices 0..n-1 shuffled and dealt into ``n_clients`` parts of (nearly) equal size."""
    whole_number("n_clients", n_clients, minimum=1, maximum=n)
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def label_skew_split(labels, n_clients: int, shards_per_client: int = 2, seed: int = 0) -> list[np.ndarray]:
    """McMahan et al.'s non-IID split: sort by label, cut into ``n_clients * shards_per_client`` equal shards,
    give each client ``shards_per_client`` shards at random. Each client then sees few classes."""
    labels = np.asarray(labels)
    whole_number("n_clients", n_clients, minimum=1)
    whole_number("shards_per_client", shards_per_client, minimum=1)
    n_shards = n_clients * shards_per_client
    if n_shards > len(labels):
        raise ValueError(f"n_clients * shards_per_client = {n_shards} shards need at least that many examples; "
                         f"got {len(labels)}")
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    shards = np.array_split(order, n_shards)
    picks = rng.permutation(n_shards).reshape(n_clients, shards_per_client)
    return [np.sort(np.concatenate([shards[s] for s in row])) for row in picks]


def label_counts(labels, splits: list[np.ndarray], n_classes: int | None = None) -> np.ndarray:
    """(clients, classes) how many examples of each class every client holds."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    return np.stack([np.bincount(labels[s], minlength=k) for s in splits])


def average_weights(states: list[dict[str, torch.Tensor]], sizes: list[int]) -> dict[str, torch.Tensor]:
    """Σ_k (n_k / n) w_k for every tensor of the state dicts: FedAvg's server step."""
    if not states or len(states) != len(sizes):
        raise ValueError(f"states and sizes must be non-empty and of equal length; got {len(states)} and {len(sizes)}")
    if any(s <= 0 for s in sizes):
        raise ValueError(f"every client size must be > 0; got {sizes}")
    total = float(sum(sizes))
    return {k: sum(s[k].float() * (n / total) for s, n in zip(states, sizes)).to(states[0][k].dtype)
            for k in states[0]}


def local_sgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
              generator: torch.Generator, loss_fn: Callable = F.cross_entropy) -> nn.Module:
    """``epochs`` passes of minibatch SGD (no momentum, as in the paper) over (x, y), in place."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    return model


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


@dataclass
class FedRun:
    """Test accuracy after every round (for :func:`centralised`: after every epoch), and what it cost."""
    name: str
    accuracy: list[float]
    model: nn.Module = field(repr=False)
    bytes_sent: int = 0          # weights sent down and up, all rounds


def communication_bytes(model: nn.Module, rounds: int, clients_per_round: int, bytes_per_number: int = 4) -> int:
    """Bytes on the network: every chosen client downloads and uploads every weight, every round."""
    n = sum(p.numel() for p in model.parameters())
    return 2 * n * bytes_per_number * whole_number("clients_per_round", clients_per_round) * whole_number("rounds", rounds)


def fedavg(new_model: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, splits: list[np.ndarray], *,
           x_test: torch.Tensor, y_test: torch.Tensor, rounds: int, local_epochs: int = 1, batch_size: int = 10,
           lr: float = 0.05, client_fraction: float = 1.0, seed: int = 0, name: str = "FedAvg") -> FedRun:
    """FedAvg over the clients ``splits`` (index arrays into x, y); test accuracy of the global model per round."""
    whole_number("rounds", rounds)
    whole_number("local_epochs", local_epochs)
    whole_number("batch_size", batch_size)
    positive("lr", lr)
    probability("client_fraction", client_fraction)
    if client_fraction == 0 or not splits or any(len(s) == 0 for s in splits):
        raise ValueError("client_fraction must be > 0 and every client must hold at least one example")
    torch.manual_seed(seed)
    global_model = new_model()
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    per_round = max(1, round(client_fraction * len(splits)))
    acc = []
    for _ in range(rounds):
        chosen = sorted(rng.choice(len(splits), per_round, replace=False))
        states, sizes = [], []
        for k in chosen:
            local = copy.deepcopy(global_model)
            idx = torch.as_tensor(splits[k])
            local_sgd(local, x[idx], y[idx], epochs=local_epochs, batch_size=batch_size, lr=lr, generator=g)
            states.append(local.state_dict())
            sizes.append(len(idx))
        global_model.load_state_dict(average_weights(states, sizes))
        acc.append(_accuracy(global_model, x_test, y_test))
    return FedRun(name, acc, global_model, communication_bytes(global_model, rounds, per_round))


def centralised(new_model: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, *, x_test: torch.Tensor,
                y_test: torch.Tensor, epochs: int, batch_size: int = 10, lr: float = 0.05, seed: int = 0) -> FedRun:
    """The same model and SGD on all the data in one place; test accuracy after every epoch."""
    torch.manual_seed(seed)
    model = new_model()
    g = torch.Generator().manual_seed(seed)
    acc = []
    for _ in range(whole_number("epochs", epochs)):
        local_sgd(model, x, y, epochs=1, batch_size=batch_size, lr=lr, generator=g)
        acc.append(_accuracy(model, x_test, y_test))
    return FedRun("centralised", acc, model, 0)


def fedavg_verdict(central: float, iid: float, non_iid: float, *, margin: float = 0.02) -> str:
    """Final test accuracies: does FedAvg on IID clients match centralised training, and what does the label
    skew cost? ``margin``: a gap smaller than this counts as level."""
    for name, v in (("central", central), ("iid", iid), ("non_iid", non_iid)):
        number(name, v, minimum=0, maximum=1)

    def gap(a: float, b: float, what: str) -> str:
        d = 100 * (a - b)
        if abs(d) < 100 * margin:
            return f"{what} is level with it ({d:+.1f} points, within {100 * margin:.0f})"
        return f"{what} is {abs(d):.1f} points {'below' if d < 0 else 'above'} it"

    return (f"centralised {central:.3f}, FedAvg IID {iid:.3f}, FedAvg non-IID {non_iid:.3f}: "
            f"{gap(iid, central, 'FedAvg on IID clients')}; {gap(non_iid, central, 'FedAvg on label-skewed clients')}"
            f"; the label skew costs {100 * (iid - non_iid):.1f} points against IID clients.")


def rounds_to_reach(accuracy: list[float], target: float) -> int | None:
    """The first round (1-based) whose accuracy reaches ``target``; None if none does."""
    return next((i + 1 for i, a in enumerate(accuracy) if a >= target), None)

