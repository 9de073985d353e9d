"""The backend seam takes its names from the one list (fly64_manifest.BACKENDS) and reads the old spelling."""

from __future__ import annotations

import pytest

import fly64_manifest
from fly64_train.cli_options import _CHOICES
from fly64_train.core.seam import BACKENDS, BackendUnavailable, get_backend


def test_the_seam_and_the_cli_list_the_backends_of_the_one_list():
    assert tuple(BACKENDS) == fly64_manifest.BACKENDS == _CHOICES["backend"]


def test_the_old_pytorch_spelling_is_the_torch_backend_and_an_unknown_name_is_refused():
    assert get_backend("pytorch") is get_backend("torch")
    with pytest.raises(BackendUnavailable, match="unknown backend 'jax'"):
        get_backend("jax")
