"""welavae.train.platform: speed settings entered and left by a context manager, and glibc heap reuse, without a GPU.

The CUDA branch only sets torch.backends flags, which exist and can be read
on a CPU-only build, so the flags inside and after the block are the known answers.
"""
import platform
import resource

import pytest
import torch

from welavae.train.platform import describe_change, environment_record, heap_reuse, speed_settings

B = torch.backends


@pytest.fixture
def flags():
    """The process's flags as the test found them, put back afterwards (new API only: the legacy read may raise)."""
    saved = (B.cuda.matmul.fp32_precision, B.cudnn.conv.fp32_precision, B.cudnn.deterministic, B.cudnn.benchmark)
    yield
    B.cuda.matmul.fp32_precision, B.cudnn.conv.fp32_precision, B.cudnn.deterministic, B.cudnn.benchmark = saved


@pytest.mark.parametrize("tf32,inside", [(True, "tf32"), (False, "ieee")])
def test_tf32_after_the_new_api_was_used_is_set_and_restored(flags, tf32, inside):
    # torch >= 2.9: once fp32_precision is set, reading the legacy allow_tf32 raises (issue 24, item 1).
    B.cuda.matmul.fp32_precision = "tf32"
    B.cudnn.conv.fp32_precision = "ieee"
    with speed_settings("cuda", tf32=tf32):
        assert B.cuda.matmul.fp32_precision == inside and B.cudnn.conv.fp32_precision == inside
    assert B.cuda.matmul.fp32_precision == "tf32" and B.cudnn.conv.fp32_precision == "ieee"


def test_default_is_exact_float32_and_untouched_state_reads_back_through_the_legacy_flags(flags):
    B.cuda.matmul.fp32_precision, B.cudnn.conv.fp32_precision = "none", "tf32"  # torch's defaults
    with speed_settings("cuda:0"):
        assert B.cuda.matmul.fp32_precision == "ieee" and B.cudnn.conv.fp32_precision == "ieee"
    assert (B.cuda.matmul.allow_tf32, B.cudnn.allow_tf32) == (False, True)  # a user's legacy read still works


@pytest.mark.parametrize("before", [(False, True), (True, False)])
def test_cudnn_is_deterministic_inside_and_restored_after(flags, before):
    B.cudnn.deterministic, B.cudnn.benchmark = before
    with speed_settings("cuda", tf32=True):
        assert B.cudnn.deterministic is True and B.cudnn.benchmark is False
    assert (B.cudnn.deterministic, B.cudnn.benchmark) == before


def test_cpu_leaves_the_cuda_flags_alone(flags):
    B.cudnn.deterministic, B.cudnn.benchmark = False, True
    B.cuda.matmul.fp32_precision = "tf32"
    with speed_settings("cpu", tf32=False):
        assert (B.cudnn.deterministic, B.cudnn.benchmark, B.cuda.matmul.fp32_precision) == (False, True, "tf32")


def test_environment_record_and_its_change():
    cpu = environment_record("cpu", tf32=True)
    assert cpu == {"device": "cpu", "device_name": "cpu", "tf32": False, "torch": torch.__version__,
                   "cuda": None, "cudnn": None}  # TF32 exists on CUDA only
    assert describe_change(None, cpu) is None and describe_change(cpu, dict(cpu)) is None
    gpu = dict(cpu, device="cuda", device_name="NVIDIA H100", tf32=True, cuda="12.8")
    assert describe_change(gpu, cpu) == "device_name 'NVIDIA H100' -> 'cpu'; tf32 True -> False; cuda '12.8' -> None"


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_heap_reuse_keeps_freed_pages():
    def faults_for_reallocations():
        torch.ones(16 << 20)  # 64 MiB: above glibc's largest mmap threshold
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(16):
            torch.ones(16 << 20)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    outside = faults_for_reallocations()
    with heap_reuse():
        with heap_reuse():  # re-entrant
            pass
        inside = faults_for_reallocations()
    # Each fresh mapping faults at least once per page: 32 faults for 64 MiB even when the kernel
    # backs it with 2 MiB pages (system-wide THP), 16,384 with 4 KiB pages.  Reused heap: ~0,
    # plus whatever else the process touches meanwhile (hence 16 rounds, not a few).
    assert outside >= 16 * 32
    assert inside * 8 < outside
