"""welavae.device: device names validated in one sentence, with CUDA faked by monkeypatching torch.cuda."""
import pytest
import torch
from fixtures import fake_gpus

from welavae.device import check_device, parse_device


@pytest.mark.parametrize("name,expected", [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"), (" CUDA:0", "cuda:0"),
                                           (torch.device("cuda", 1), "cuda:1")])
def test_accepted_names(monkeypatch, name, expected):
    fake_gpus(monkeypatch, 2)
    assert check_device(name) == torch.device(expected)


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:-1", "cpu:0", "cuda:1:2", "", "tpu"])
def test_unknown_names_are_one_sentence(name):
    with pytest.raises(ValueError, match=r"--device .* is not a device: use cpu, cuda, cuda:N or mps$"):
        parse_device(name)


def test_an_index_beyond_the_machine_names_the_devices_there(monkeypatch):
    fake_gpus(monkeypatch, 1)
    with pytest.raises(ValueError, match=r"^device 'cuda:7' does not exist: this machine has 1 CUDA device \(cuda:0\)$"):
        check_device("cuda:7")


def test_cuda_on_a_machine_without_one(monkeypatch):
    fake_gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match="no CUDA device"):
        check_device("cuda")
    assert parse_device("cuda:3") == torch.device("cuda:3")  # e.g. for Ray workers: the name alone
