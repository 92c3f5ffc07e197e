"""MovieLens loaders (GroupLens): fetch with cache, mirror and integrity checks, then parse.

Variants and their formats:

* ``ml-latest-small``, ``ml-20m``, ``ml-25m``, ``ml-latest`` — ``ratings.csv``,
  ``movies.csv``, ``tags.csv`` (UTF-8, header row);
* ``ml-100k`` — ``u.data`` (tab-separated), ``u.item`` / ``u.user`` (pipe-separated, latin-1);
* ``ml-1m`` — ``ratings.dat`` / ``movies.dat`` / ``users.dat`` (``::``-separated, latin-1).

The fixed releases have known row counts; a mismatch raises
:class:`~cinerec.errors.IntegrityError` so a truncated download is never trained on.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import pandas as pd

from cinerec.data.dataset import Dataset
from cinerec.data.download import (
    cache_dir,
    download,
    extract_zip,
    fetch_md5,
    file_md5,
    is_url,
    mirror_setting,
    parse_md5,
)
from cinerec.data.signals import derive_sessions
from cinerec.data.validate import validate_interactions, validate_items, validate_users
from cinerec.errors import DataError, IntegrityError

BASE_URL: Final = "https://files.grouplens.org/datasets/movielens"
NO_GENRES: Final = "(no genres listed)"
#: Genre flag columns of ml-100k's u.item, in file order ("unknown" is dropped).
GENRES_100K: Final = (
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_YEAR_RE: Final = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
CSV_HEADERS: Final = {
    "ratings.csv": "userId,movieId,rating,timestamp",
    "movies.csv": "movieId,title,genres",
    "tags.csv": "userId,movieId,tag,timestamp",
}
_RATING_NAMES: Final = {"user_id": "userId", "item_id": "movieId", "value": "rating"}


@dataclass(frozen=True)
class Variant:
    """One MovieLens release: its file layout and, for fixed releases, known row counts."""

    name: str
    layout: Literal["csv", "100k", "1m"]
    ratings: int | None = None
    movies: int | None = None

    @property
    def zip_name(self) -> str:
        """The archive's file name on the GroupLens server."""
        return f"{self.name}.zip"

    @property
    def files(self) -> tuple[str, ...]:
        """Files the extracted release must contain."""
        return {
            "csv": ("ratings.csv", "movies.csv", "tags.csv"),
            "100k": ("u.data", "u.item", "u.user"),
            "1m": ("ratings.dat", "movies.dat", "users.dat"),
        }[self.layout]

    def url(self, base: str = BASE_URL) -> str:
        """Download URL of the archive under ``base``."""
        return f"{base.rstrip('/')}/{self.zip_name}"


VARIANTS: Final = {
    v.name: v
    for v in (
        Variant("ml-latest-small", "csv", ratings=100_836, movies=9_742),
        Variant("ml-100k", "100k", ratings=100_000, movies=1_682),
        Variant("ml-1m", "1m", ratings=1_000_209, movies=3_883),
        Variant("ml-20m", "csv", ratings=20_000_263, movies=27_278),
        Variant("ml-25m", "csv", ratings=25_000_095, movies=62_423),
        Variant("ml-latest", "csv"),
    )
}


def get_variant(name: str) -> Variant:
    """The variant called ``name`` (``"ml-25m"`` or just ``"25m"``); DataError if unknown."""
    key = name if name.startswith("ml-") else f"ml-{name}"
    if key not in VARIANTS:
        raise DataError(f"unknown MovieLens variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[key]


def check_structure(folder: Path, variant: Variant) -> None:
    """Raise IntegrityError unless ``folder`` holds the variant's files (and CSV headers)."""
    missing = [f for f in variant.files if not (folder / f).is_file()]
    if missing:
        raise IntegrityError(
            f"{folder}: not a complete {variant.name} release, missing {', '.join(missing)}"
        )
    if variant.layout != "csv":
        return
    for file in variant.files:
        with open(folder / file, encoding="utf-8-sig", newline="") as handle:
            header = handle.readline().strip()
        if header != CSV_HEADERS[file]:
            raise IntegrityError(
                f"{folder / file}: header {header!r}, expected {CSV_HEADERS[file]!r}"
            )


def fetch_movielens(
    name: str,
    *,
    mirror: str | Path | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Return a folder holding the extracted release, downloading it if needed.

    Order: a folder mirror's extracted ``<name>/`` (used in place) or ``<name>.zip``; the
    cache (``<cache>/movielens/<name>/``); a download from the URL mirror or GroupLens. A
    published ``.md5`` is checked whenever available; the structure always is.
    """
    variant = get_variant(name)
    root = cache_dir(cache) / "movielens"
    extracted = root / variant.name
    location = mirror_setting(mirror)
    if location is not None and not is_url(location):
        return _from_folder_mirror(Path(location).expanduser(), variant, extracted)
    if not extracted.is_dir():
        archive = root / variant.zip_name
        if not archive.is_file():
            url = variant.url(location or BASE_URL)
            download(url, archive, expected_md5=fetch_md5(url), progress=progress)
        extract_zip(archive, extracted)
    check_structure(extracted, variant)
    return extracted


def _from_folder_mirror(mirror: Path, variant: Variant, extracted: Path) -> Path:
    folder = mirror / variant.name
    if folder.is_dir():
        check_structure(folder, variant)
        return folder
    archive = mirror / variant.zip_name
    if not archive.is_file():
        raise DataError(
            f"mirror folder has neither {variant.name}/ nor {variant.zip_name}", file=str(mirror)
        )
    checksum = archive.with_name(archive.name + ".md5")
    if checksum.is_file():
        expected = parse_md5(checksum.read_text(encoding="ascii", errors="replace"))
        if expected and file_md5(archive) != expected:
            raise IntegrityError(f"{archive}: MD5 does not match {checksum.name}")
    if not extracted.is_dir():
        extract_zip(archive, extracted)
    check_structure(extracted, variant)
    return extracted


def load_movielens(
    name: str,
    *,
    mirror: str | Path | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
    strict: bool = True,
) -> Dataset:
    """Fetch (see :func:`fetch_movielens`) and parse a MovieLens release into a Dataset."""
    variant = get_variant(name)
    folder = fetch_movielens(variant.name, mirror=mirror, cache=cache, progress=progress)
    return read_movielens(folder, variant.name, strict=strict)


def read_movielens(folder: str | Path, name: str, *, strict: bool = True) -> Dataset:
    """Parse an extracted release in ``folder`` into a Dataset (items, ratings, users).

    Items get ``item_id = str(movieId)``, the title without its trailing year, ``year``,
    genres as a list, lower-cased de-duplicated ``tags`` and ``type="movie"``; ratings become
    ``rating`` events in UTC with derived sessions.
    """
    folder = Path(folder)
    variant = get_variant(name)
    check_structure(folder, variant)
    reader = {"csv": _read_csv_release, "100k": _read_100k, "1m": _read_1m}[variant.layout]
    movies, ratings, users, files = reader(folder)
    _check_count(folder / files[0], len(ratings), variant.ratings)
    _check_count(folder / files[1], len(movies), variant.movies)

    items, _ = validate_items(movies, file=files[1], strict=strict, names={"item_id": "movieId"})
    items["type"] = "movie"
    inter, report = validate_interactions(
        ratings,
        file=files[0],
        strict=strict,
        item_ids=pd.Index(items["item_id"]),
        names=_RATING_NAMES,
    )
    inter["session_id"] = derive_sessions(inter)
    info: dict[str, object] = {"source": variant.name}
    if not report.ok:
        info["validation"] = report.as_dict()
    if users is not None:
        users, _ = validate_users(users, file=files[2], strict=strict)
        return Dataset(variant.name, items, inter, users=users, info=info)
    return Dataset(variant.name, items, inter, info=info)


def _check_count(path: Path, found: int, expected: int | None) -> None:
    if expected is not None and found != expected:
        raise IntegrityError(
            f"{path}: {found:,} rows, expected {expected:,}; the copy is incomplete or "
            f"altered — delete {path.parent} and load again"
        )


def split_title(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split ``"Heat (1995)"`` into ``("Heat", 1995)``; year ranges keep their first year."""
    titles = titles.astype("str").str.strip()
    year = titles.str.extract(_YEAR_RE, expand=False)
    clean = titles.str.replace(_YEAR_RE, "", regex=True).str.strip()
    clean = clean.where(clean != "", titles)
    return clean, pd.to_numeric(year, errors="coerce").astype("Int32")


def split_genres(genres: pd.Series, sep: str = "|") -> pd.Series:
    """Genre strings to lists, without MovieLens' ``(no genres listed)`` placeholder."""
    return pd.Series(
        [
            [g for g in str(value).split(sep) if g and g != NO_GENRES]
            if isinstance(value, str)
            else []
            for value in genres
        ],
        index=genres.index,
        dtype=object,
    )


def aggregate_tags(tags: pd.DataFrame) -> pd.Series:
    """Per movie (index ``str(movieId)``): lower-cased tags, de-duplicated, first use first."""
    text = tags["tag"].astype("str").str.strip().str.lower()
    frame = pd.DataFrame({"movieId": tags["movieId"].astype("str"), "tag": text})
    frame = frame[frame["tag"].notna() & (frame["tag"] != "")]
    frame = frame.drop_duplicates(["movieId", "tag"])
    return frame.groupby("movieId", sort=False)["tag"].agg(list)


def _movies_frame(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    title, year = split_title(titles)
    return pd.DataFrame(
        {"item_id": ids, "title": title, "year": year, "genres": genres, "type": "movie"}
    )


def _read_csv_release(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    ratings = _fast_csv(
        folder / "ratings.csv",
        {"userId": "int64", "movieId": "int64", "rating": "float64", "timestamp": "int64"},
    )
    movies = pd.read_csv(folder / "movies.csv", dtype="str", keep_default_na=False)
    tags = pd.read_csv(folder / "tags.csv", dtype="str", keep_default_na=False)
    items = _movies_frame(movies["movieId"], movies["title"], split_genres(movies["genres"]))
    tag_lists = aggregate_tags(tags)
    items["tags"] = pd.Series(
        [tag_lists.get(key, []) for key in items["item_id"].astype("str").str.strip()],
        index=items.index,
        dtype=object,
    )
    ratings = ratings.rename(columns={"userId": "user_id", "movieId": "item_id", "rating": "value"})
    return items, ratings, None, ("ratings.csv", "movies.csv", "tags.csv")


def _fast_csv(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    """Read a numeric CSV with the pyarrow engine; fall back to strings on bad values.

    The fallback lets validation point at the bad row instead of a parser traceback.
    """
    try:
        return pd.read_csv(path, dtype=dtypes, engine="pyarrow")
    except (ValueError, TypeError, OSError):
        return pd.read_csv(path, dtype="str", keep_default_na=False)


def _read_table(
    path: Path, sep: str, names: list[str], *, encoding: str = "latin-1"
) -> pd.DataFrame:
    text = path.read_text(encoding=encoding)
    if len(sep) > 1:
        text = text.replace(sep, "\t")
        sep = "\t"
    return pd.read_csv(
        io.StringIO(text),
        sep=sep,
        names=names,
        header=None,
        dtype="str",
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        index_col=False,
    )


def _read_100k(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    ratings = _read_table(folder / "u.data", "\t", ["user_id", "item_id", "value", "timestamp"])
    flag_names = [f"g{i}" for i in range(len(GENRES_100K))]
    cols = ["movieId", "title", "release", "video_release", "imdb_url", *flag_names]
    movies = _read_table(folder / "u.item", "|", cols)
    flags = movies[flag_names].to_numpy() == "1"
    genres = pd.Series(
        [[g for g, on in zip(GENRES_100K, row, strict=True) if on and g != "unknown"]
         for row in flags],
        index=movies.index,
        dtype=object,
    )  # fmt: skip
    items = _movies_frame(movies["movieId"], movies["title"], genres)
    release_year = pd.to_numeric(movies["release"].str[-4:], errors="coerce").astype("Int32")
    items["year"] = items["year"].fillna(release_year)
    users = _read_table(folder / "u.user", "|", ["user_id", "age", "gender", "occupation", "zip"])
    return items, ratings, users[["user_id", "age", "gender"]], ("u.data", "u.item", "u.user")


def _read_1m(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    ratings = _read_table(
        folder / "ratings.dat", "::", ["user_id", "item_id", "value", "timestamp"]
    )
    movies = _read_table(folder / "movies.dat", "::", ["movieId", "title", "genres"])
    genres = split_genres(movies["genres"].str.replace("Children's", "Children", regex=False))
    items = _movies_frame(movies["movieId"], movies["title"], genres)
    users = _read_table(
        folder / "users.dat", "::", ["user_id", "gender", "age", "occupation", "zip"]
    )
    return (
        items,
        ratings,
        users[["user_id", "age", "gender"]],
        (
            "ratings.dat",
            "movies.dat",
            "users.dat",
        ),
    )


__all__ = [
    "BASE_URL",
    "VARIANTS",
    "Variant",
    "aggregate_tags",
    "check_structure",
    "fetch_movielens",
    "get_variant",
    "load_movielens",
    "read_movielens",
    "split_genres",
    "split_title",
]
