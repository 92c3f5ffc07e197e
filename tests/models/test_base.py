"""The shared pieces of the model protocol: the registry, save guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, get_model_class, load_model, model_names
from tests.models.contract import synthetic_matrix

BUILTIN = {"ease", "itemknn", "pop", "trending"}


def test_registry_lists_builtin_models() -> None:
    assert set(model_names()) >= BUILTIN
    for name in BUILTIN:
        assert get_model_class(name).name == name


def test_unknown_model_name_lists_known_ones() -> None:
    with pytest.raises(ModelError, match="unknown model 'nope'") as info:
        get_model_class("nope")
    for name in BUILTIN:
        assert name in str(info.value)


class _ObjectStateModel(Model):
    """An unregistered model whose state cannot be stored without pickle."""

    name = "object-state"

    def _fit(self, data: InteractionMatrix) -> None:
        pass

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        n = self.n_items if items is None else len(items)
        return np.zeros((len(user_idx), n), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"ids": np.array(["a", None], dtype=object)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        pass


def test_save_refuses_object_arrays(tmp_path: Path) -> None:
    model = _ObjectStateModel().fit(synthetic_matrix())
    with pytest.raises(ModelError, match="object arrays"):
        model.save(tmp_path / "bundle")


def test_load_missing_folder_is_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load"):
        load_model(tmp_path / "missing")
