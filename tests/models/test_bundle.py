import json

import numpy as np
import pytest

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.errors import IntegrityError
from cinerec.models.base import get_model_class
from cinerec.models.bundle import load_bundle, save_bundle
from tests.synthetic import clustered_dataset


@pytest.fixture()
def bundle_dir(tmp_path):
    data = clustered_dataset()
    item_index = IdIndex.from_ids(data.items["item_id"])
    matrix = InteractionMatrix.build(data.interactions, items=data.items, item_index=item_index)
    models = {
        "pop": get_model_class("pop")().fit(matrix),
        "ease": get_model_class("ease")(lam=10.0).fit(matrix),
    }
    return save_bundle(
        tmp_path / "bundle", matrix.users, item_index, models, default_model="ease", info={"x": 1}
    ), matrix


def test_round_trip_recommendations(bundle_dir):
    folder, matrix = bundle_dir
    bundle = load_bundle(folder)
    assert bundle.default_model == "ease"
    assert bundle.manifest["x"] == 1
    recs = bundle.recommend(["u0", "u1", "nobody"], k=5)
    assert set(recs["user_id"]) == {"u0", "u1"}
    assert recs.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 2
    # seen items are excluded
    seen = set(matrix.items.ids[matrix.matrix[matrix.users.lookup(["u0"])[0]].indices])
    assert not seen & set(recs.loc[recs["user_id"] == "u0", "item_id"])
    scores = recs.loc[recs["user_id"] == "u0", "score"].to_numpy()
    assert np.all(np.diff(scores) <= 0)


def test_altered_file_is_refused(bundle_dir):
    folder, _ = bundle_dir
    arrays = folder / "models" / "ease" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        load_bundle(folder)


def test_missing_file_and_bad_manifest_are_refused(bundle_dir):
    folder, _ = bundle_dir
    (folder / "items.parquet").unlink()
    with pytest.raises(IntegrityError, match=r"missing file items\.parquet"):
        load_bundle(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="unreadable manifest"):
        load_bundle(folder)


def test_manifest_lists_checksums_of_every_file(bundle_dir):
    folder, _ = bundle_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
