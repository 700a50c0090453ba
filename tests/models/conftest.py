"""Model tests run single-threaded: the CI machine is shared, and OpenMP spinning on busy cores is slow."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
