import hashlib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from cinerec.data import movielens
from cinerec.data.movielens import (
    Variant,
    fetch_movielens,
    get_variant,
    load_movielens,
    read_movielens,
    split_title,
)
from cinerec.errors import DataError, IntegrityError

RATINGS = [
    "userId,movieId,rating,timestamp",
    "1,1,4.0,964982703",
    "1,2,3.5,964982800",
    "2,1,5.0,1445714994",
]
MOVIES = [
    "movieId,title,genres",
    "1,Toy Story (1995),Adventure|Animation|Children",
    '2,"American President, The (1995)",Comedy|Drama|Romance',
    "3,Cosmos,(no genres listed)",
]
TAGS = [
    "userId,movieId,tag,timestamp",
    "2,1,Pixar,1445714994",
    "2,1,pixar ,1445714995",
    "1,1,Fun,1445714996",
]


def write_release(folder: Path, name: str = "ml-latest", ratings: list[str] = RATINGS) -> Path:
    """A tiny CSV release with CRLF line endings in ``folder/name``."""
    release = folder / name
    release.mkdir(parents=True)
    for file, lines in (("ratings.csv", ratings), ("movies.csv", MOVIES), ("tags.csv", TAGS)):
        (release / file).write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return release


def zip_release(release: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for file in release.iterdir():
            zf.write(file, f"{release.name}/{file.name}")
    return archive


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_variants_and_urls():
    assert get_variant("25m") is get_variant("ml-25m")
    assert get_variant("ml-25m").ratings == 25_000_095
    assert get_variant("latest-small").url() == (
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
    )
    with pytest.raises(DataError, match="ml-100k"):
        get_variant("ml-2m")


def test_split_title():
    titles = pd.Series(["Heat (1995)", "Cosmos", "Babylon 5 (1994-1998)", "Show (2007- ) "])
    clean, year = split_title(titles)
    assert clean.tolist() == ["Heat", "Cosmos", "Babylon 5", "Show"]
    assert year.tolist()[0] == 1995 and pd.isna(year.iloc[1]) and year.iloc[2] == 1994


def test_read_csv_release(tmp_path):
    ds = read_movielens(write_release(tmp_path), "ml-latest")
    items = ds.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story" and items.loc["1", "year"] == 1995
    assert items.loc["2", "title"] == "American President, The"
    assert items.loc["1", "genres"] == ["Adventure", "Animation", "Children"]
    assert items.loc["3", "genres"] == [] and items.loc["3", "tags"] == []
    assert items.loc["1", "tags"] == ["pixar", "fun"]
    assert set(items["type"]) == {"movie"}
    inter = ds.interactions
    assert inter["user_id"].tolist() == ["1", "1", "2"]
    assert inter["value"].tolist() == [4.0, 3.5, 5.0]
    assert set(inter["event"]) == {"rating"}
    assert inter["timestamp"].iloc[0] == pd.Timestamp(964982703, unit="s", tz="UTC")
    assert inter["session_id"].tolist() == ["1:0", "1:0", "2:0"]
    ds.save(tmp_path / "saved")  # conforms to the schemas


def test_bad_rating_row_is_named(tmp_path):
    release = write_release(tmp_path, ratings=[*RATINGS, "3,2,oops,964982703"])
    with pytest.raises(DataError) as info:
        read_movielens(release, "ml-latest")
    assert (info.value.file, info.value.row, info.value.field) == ("ratings.csv", 4, "rating")
    ds = read_movielens(release, "ml-latest", strict=False)
    assert len(ds.interactions) == 3 and ds.info["validation"]["rows_kept"] == 3


def test_row_count_and_structure_checks(tmp_path):
    release = write_release(tmp_path, "ml-latest-small")
    with pytest.raises(IntegrityError, match="3 rows, expected 100,836"):
        read_movielens(release, "ml-latest-small")
    (release / "tags.csv").unlink()
    with pytest.raises(IntegrityError, match=r"missing tags\.csv"):
        read_movielens(release, "ml-latest-small")
    (release / "tags.csv").write_text("user,movie,tag\n")
    with pytest.raises(IntegrityError, match="header"):
        read_movielens(release, "ml-latest-small")


def test_mirror_folder_extracted(tmp_path):
    write_release(tmp_path / "mirror")
    cache = tmp_path / "cache"
    folder = fetch_movielens("ml-latest", mirror=tmp_path / "mirror", cache=cache)
    assert folder == tmp_path / "mirror" / "ml-latest"
    assert _files(cache) == []  # used in place, nothing copied


def test_mirror_folder_zip(tmp_path, monkeypatch):
    release = write_release(tmp_path / "src")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = zip_release(release, mirror / "ml-latest.zip")
    monkeypatch.setenv("CINEREC_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    ds = load_movielens("ml-latest")
    assert len(ds.interactions) == 3
    assert (tmp_path / "cache" / "movielens" / "ml-latest" / "ratings.csv").is_file()
    (mirror / "ml-latest.zip.md5").write_text("0" * 32)
    (tmp_path / "other").mkdir()
    with pytest.raises(IntegrityError, match="MD5"):
        fetch_movielens("ml-latest", cache=tmp_path / "other")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    (mirror / "ml-latest.zip.md5").write_text(f"{digest}  ml-latest.zip\n")
    assert fetch_movielens("ml-latest", cache=tmp_path / "other").is_dir()


def test_mirror_folder_without_release(tmp_path):
    with pytest.raises(DataError, match=r"neither ml-latest/ nor ml-latest.zip"):
        fetch_movielens("ml-latest", mirror=tmp_path, cache=tmp_path / "cache")


def test_download_from_url_mirror(http_folder, tmp_path):
    base, served = http_folder
    zip_release(write_release(tmp_path / "src"), served / "ml-latest.zip")
    cache = tmp_path / "cache"
    ds = load_movielens("ml-latest", mirror=base, cache=cache, progress=False)
    assert len(ds.items) == 3
    assert (cache / "movielens" / "ml-latest.zip").is_file()
    (served / "ml-latest.zip").unlink()  # the second load comes from the cache
    assert len(load_movielens("ml-latest", mirror=base, cache=cache).interactions) == 3


def test_download_checks_published_md5(http_folder, tmp_path):
    base, served = http_folder
    archive = zip_release(write_release(tmp_path / "src"), served / "ml-latest.zip")
    (served / "ml-latest.zip.md5").write_text("MD5 (ml-latest.zip) = " + "f" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(IntegrityError):
        fetch_movielens("ml-latest", mirror=base, cache=cache, progress=False)
    assert _files(cache) == []
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    (served / "ml-latest.zip.md5").write_text(f"MD5 (ml-latest.zip) = {digest}\n")
    assert (fetch_movielens("ml-latest", mirror=base, cache=cache) / "movies.csv").is_file()


def test_100k_format(tmp_path, monkeypatch):
    monkeypatch.setitem(movielens.VARIANTS, "ml-100k", Variant("ml-100k", "100k"))
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    flags = ["0"] * 19
    toy = flags.copy()
    toy[3] = toy[4] = "1"
    rows = [
        ["242", "Kolya (1996)", "24-Jan-1997", "", "http://x", *flags],
        ["302", "L.A. Confidential (1997)", "01-Jan-1997", "", "http://y", *toy],
    ]
    text = "\n".join("|".join(r) for r in rows) + "\n"
    (folder / "u.item").write_bytes(text.replace("Kolya", "Kolj\xe0").encode("latin-1"))
    (folder / "u.user").write_text("196|49|M|writer|55105\n186|39|F|executive|00000\n")
    ds = read_movielens(folder, "ml-100k")
    items = ds.items.set_index("item_id")
    assert items.loc["242", "title"] == "Kolj\xe0" and items.loc["242", "genres"] == []
    assert items.loc["302", "genres"] == ["Animation", "Children"]
    assert ds.interactions["item_id"].tolist() == ["242", "302"]
    assert ds.users["age"].tolist() == [49, 39]


def test_1m_format(tmp_path, monkeypatch):
    monkeypatch.setitem(movielens.VARIANTS, "ml-1m", Variant("ml-1m", "1m"))
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n2::1::4::978300761\n")
    movies = '1::Toy Story (1995)::Animation|Children\'s\n1193::"Cuckoo" (1975)::Drama\n'
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = read_movielens(folder, "ml-1m")
    items = ds.items.set_index("item_id")
    assert items.loc["1", "genres"] == ["Animation", "Children"]
    assert items.loc["1193", "title"] == '"Cuckoo"'
    assert ds.users["gender"].tolist() == ["F", "M"]
    assert len(ds.interactions) == 2


@pytest.mark.integration
def test_load_ml_latest_small_from_shared_mirror(datasets_mirror, tmp_path):
    ds = load_movielens("ml-latest-small", mirror=datasets_mirror, cache=tmp_path, progress=False)
    summary = ds.summary()
    assert summary["interactions"] == 100_836
    assert summary["users"] == 610
    assert summary["items"] == 9_742
    assert summary["items_with_interactions"] == 9_724
    heat = ds.items[ds.items["title"] == "Heat"].iloc[0]
    assert heat["year"] == 1995 and "Action" in heat["genres"]
    assert ds.interactions["timestamp"].min() >= pd.Timestamp("1996-03-29", tz="UTC")
    assert _files(tmp_path) == []
