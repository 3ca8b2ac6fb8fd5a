import socket

import pytest
import torch

from labkit import runtime


def test_profile_from_argument_env_and_detection(monkeypatch):
    assert runtime.get_profile("CPU") == "cpu"
    monkeypatch.setenv("LABKIT_PROFILE", "gpu")
    assert runtime.get_profile(None) == "gpu"
    assert runtime.get_profile("smoke") == "smoke"  # the argument wins
    monkeypatch.delenv("LABKIT_PROFILE")
    assert runtime.get_profile(None) == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_profile_is_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"profile must be one of smoke, cpu, gpu; got 'fast'"):
        runtime.get_profile("fast")
    monkeypatch.setenv("LABKIT_PROFILE", "laptop")
    with pytest.raises(ValueError, match="LABKIT_PROFILE"):
        runtime.get_profile(None)


def test_setup_picks_sizes_and_seeds(capsys):
    run = runtime.setup("smoke", seed=7, steps={"smoke": 3, "cpu": 300, "gpu": 3000}, lr=1e-3)
    assert (run.profile, run.steps, run.lr, run.seed) == ("smoke", 3, 1e-3, 7)
    a = torch.rand(3)
    runtime.setup("smoke", seed=7, quiet=True)
    assert torch.equal(a, torch.rand(3))
    assert "profile=smoke" in capsys.readouterr().out
    with pytest.raises(AttributeError, match="epochs"):
        run.epochs
    with pytest.raises(ValueError, match="gpu"):
        runtime.setup("cpu", steps={"smoke": 1, "cpu": 2})
    with pytest.raises(ValueError, match="seed"):
        runtime.setup("cpu", seed=-1)


def test_offline_comes_from_the_environment_without_a_socket(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def boom(*a, **k):
        raise AssertionError("is_offline must not open a connection when the environment says offline")

    monkeypatch.setattr(socket, "create_connection", boom)
    assert runtime.is_offline() is True


def test_network_guard_blocks_connections():
    with pytest.raises(ConnectionRefusedError, match="blocked"):
        socket.create_connection(("huggingface.co", 443), timeout=1)


def test_device_is_cpu_here_unless_asked():
    assert runtime.get_device("cpu").type == "cpu"
    assert runtime.get_device().type in ("cpu", "cuda", "mps")
