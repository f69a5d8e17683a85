"""Suite-wide settings.

The suite runs under ``pytest -n 2`` on a 2-core machine: two workers each using torch's
default intra-op pool oversubscribe the cores and make small ops 10-100x slower, so each
worker runs torch single-threaded. (Throughput is measured in benchmarks/, not here.)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # re-asserted per test: code under test (CLI --threads, trainers) may change it
    torch.set_num_threads(1)
    yield
