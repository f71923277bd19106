"""Known-answer tests for the per-label accuracy of Table 1 (paper §4.4)."""
import numpy as np
import pytest
import torch

from welavae.metrics import label_accuracy

LABELS = np.array([[0, 1], [1, 1], [2, 0], [1, 0]])  # (N=4, m=2)


def test_indices_give_fraction_correct_per_label():
    pred = np.array([[0, 1], [1, 0], [0, 0], [1, 1]])
    # label 0: rows 0, 1, 3 right → 3/4; label 1: rows 0, 2 right → 2/4.
    np.testing.assert_array_equal(label_accuracy(pred, LABELS), [0.75, 0.5])


def test_logits_use_the_argmax_of_each_head():
    angle = np.array([[5.0, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 5]])  # argmax 0, 1, 2, 2
    dist = np.array([[0.0, 1], [0, 1], [0, 1], [1, 0]])  # argmax 1, 1, 1, 0
    # angle: 3 of 4 (last row wrong); distance: 3 of 4 (row 2 wrong).
    acc = label_accuracy([angle, dist], LABELS)
    np.testing.assert_array_equal(acc, [0.75, 0.75])
    assert acc.dtype == np.float64


def test_torch_tensors_and_single_label():
    logits = [torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)]
    np.testing.assert_array_equal(label_accuracy(logits, torch.tensor([0, 0])), [0.5])
    np.testing.assert_array_equal(label_accuracy(torch.tensor([1, 1]), np.array([1, 0])), [0.5])


def test_perfect_and_wrong():
    np.testing.assert_array_equal(label_accuracy(LABELS, LABELS), [1.0, 1.0])
    np.testing.assert_array_equal(label_accuracy(LABELS + 3, LABELS), [0.0, 0.0])


@pytest.mark.parametrize(
    "pred, labels, match",
    [
        (LABELS[:3], LABELS, "must match"),
        ([np.zeros((4, 3))], LABELS, "2 labels"),
        ([np.zeros((4, 3)), np.zeros((3, 2))], LABELS, r"logits\[1\]"),
        (LABELS + 0.5, LABELS, "integer class indices"),
        (LABELS, LABELS + 0.5, "labels must hold integer"),
        (LABELS, np.zeros((0, 2), dtype=int), "empty"),
    ],
)
def test_bad_input_gets_a_clear_error(pred, labels, match):
    with pytest.raises(ValueError, match=match):
        label_accuracy(pred, labels)
