import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

from tiny import ARCHITECTURES, make_model, make_tokenizer, save_tiny  # noqa: E402


@pytest.fixture(params=ARCHITECTURES)
def arch(request) -> str:
    return request.param


@pytest.fixture
def tokenizer(arch):
    return make_tokenizer(arch)


@pytest.fixture
def model(arch, tokenizer):
    return make_model(arch, tokenizer)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, str]:
    """A saved tiny checkpoint (model + tokenizer) per architecture, loadable by path."""
    root = tmp_path_factory.mktemp("tiny")
    return {a: save_tiny(a, str(root / a)) for a in ARCHITECTURES}
