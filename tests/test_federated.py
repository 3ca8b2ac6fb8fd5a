"""FedAvg from scratch: the splits, the server's weighted average, one client equal to centralised training,
the communication count and the verdict wording."""
import numpy as np
import pytest
import torch
from torch import nn

from labkit import federated as fl


def data(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 6
    x = 0.5 * torch.randn(n, 6, generator=g) + 2 * torch.nn.functional.one_hot(y, 6).float()
    return x, y


def new_model():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 6))


def test_iid_split_deals_every_index_once_in_equal_parts():
    parts = fl.iid_split(103, 5, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert {len(p) for p in parts} <= {20, 21}


def test_label_skew_split_gives_each_client_few_classes():
    labels = np.repeat(np.arange(10), 60)
    parts = fl.label_skew_split(labels, 10, shards_per_client=2, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(600))
    counts = fl.label_counts(labels, parts)
    assert counts.shape == (10, 10) and counts.sum() == 600
    assert ((counts > 0).sum(1) <= 2).all()               # shards of 30 never straddle two classes here
    iid = fl.label_counts(labels, fl.iid_split(600, 10))
    assert ((iid > 0).sum(1) == 10).all()
    with pytest.raises(ValueError, match="shards"):
        fl.label_skew_split(labels[:5], 10)


def test_average_weights_is_the_size_weighted_mean():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    torch.testing.assert_close(fl.average_weights([a, b], [1, 3])["w"], torch.tensor([2.5, 5.0]))
    torch.testing.assert_close(fl.average_weights([a, b], [1, 1])["w"], torch.tensor([2.0, 4.0]))
    with pytest.raises(ValueError, match="equal length"):
        fl.average_weights([a, b], [1])
    with pytest.raises(ValueError, match="> 0"):
        fl.average_weights([a, b], [0, 2])


def test_fedavg_with_one_client_holding_everything_is_centralised_training():
    x, y = data()
    one = fl.fedavg(new_model, x, y, [np.arange(len(y))], x_test=x, y_test=y, rounds=3, local_epochs=1,
                    batch_size=10, lr=0.1, seed=2)
    central = fl.centralised(new_model, x, y, x_test=x, y_test=y, epochs=3, batch_size=10, lr=0.1, seed=2)
    assert one.accuracy == central.accuracy
    for p, q in zip(one.model.parameters(), central.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_fedavg_learns_and_counts_what_it_sends():
    x, y = data()
    parts = fl.iid_split(len(y), 4)
    run = fl.fedavg(new_model, x, y, parts, x_test=x, y_test=y, rounds=5, local_epochs=2, lr=0.1,
                    client_fraction=0.5)
    assert run.accuracy[-1] > 0.5 > 1 / 6
    n = sum(p.numel() for p in new_model().parameters())
    assert run.bytes_sent == fl.communication_bytes(run.model, 5, 2) == 2 * n * 4 * 2 * 5
    with pytest.raises(ValueError, match="client_fraction"):
        fl.fedavg(new_model, x, y, parts, x_test=x, y_test=y, rounds=1, client_fraction=0.0)


def test_rounds_to_reach():
    assert fl.rounds_to_reach([0.1, 0.5, 0.9], 0.5) == 2
    assert fl.rounds_to_reach([0.1, 0.5], 0.95) is None


def test_fedavg_verdict_follows_the_numbers():
    level = fl.fedavg_verdict(0.95, 0.945, 0.85)
    assert "FedAvg on IID clients is level with it (-0.5 points" in level
    assert "FedAvg on label-skewed clients is 10.0 points below it" in level and "costs 9.5 points" in level
    above = fl.fedavg_verdict(0.90, 0.95, 0.93)
    assert "FedAvg on IID clients is 5.0 points above it" in above
    with pytest.raises(ValueError, match="non_iid"):
        fl.fedavg_verdict(0.9, 0.9, 1.5)
