"""welavae.train.preflight: every refusal before the first write (seeds, the data against the model)."""
import numpy as np
import pytest
from fixtures import blobs_cfg as cfg

from welavae.config import TrainConfig
from welavae.data import Dataset, from_arrays
from welavae.train.preflight import check_run, parse_seeds


def test_bad_training_input_is_refused_at_the_gate(blobs):
    # Arrays are checked once where they become a Dataset (from_arrays), the run's combination by the
    # preflight; the trainer behind them trusts its input.
    images, labels, _ = blobs
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)
    c = cfg()
    bad = images[:256].copy()
    bad[3, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        from_arrays(bad, labels[:256])
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        from_arrays(bad, labels[:256])
    with pytest.raises(ValueError, match="0..1"):
        check_run(c, [0], Dataset(images[:256], labels[:256] + 1))
    with pytest.raises(ValueError, match="needs weak labels"):
        check_run(c, [0], Dataset(images[:256], None))


@pytest.mark.parametrize(
    "text,seeds",
    [("0-7", list(range(8))), ("0,1,5", [0, 1, 5]), ("3", [3]), ("0-2,5", [0, 1, 2, 5]), (" 4 , 2 ", [4, 2]),
     ("10-10", [10]), (7, [7])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    "text,why",
    [("3-1", "--seeds must look like"), ("a", "--seeds must look like"), ("", "--seeds must look like"),
     ("1.5", "--seeds must look like"), ("0-", "--seeds must look like"), ("-1", r"seeds \(--seeds\): seed -1 is outside"),
     ("0,0", r"seeds \(--seeds\) must be distinct"), ("0-2,1", r"seeds \(--seeds\) must be distinct"),
     ("0-100000", "--seeds '0-100000' names more than 100000 seeds")],
)
def test_parse_seeds_refuses_in_one_sentence(text, why):
    with pytest.raises(ValueError, match=why):
        parse_seeds(text)
