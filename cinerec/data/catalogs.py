"""Import the four streaming catalogs (Netflix, Amazon Prime, Disney+, Hulu) as items.

The catalogs are Kaggle CSV files (Shivam Bansal, CC0) that need a login to download, so
cinerec never fetches them: the user points :func:`load_catalogs` at a folder holding the
files they downloaded (by default ``<mirror>/streaming-catalogs``).

Each row becomes an item in the ITEMS schema with ``item_id = "<provider>:<show_id>"``
(show ids are only unique within one file). Source quirks are repaired, not hidden:

* a rating cell holding a duration ("74 min", "2 Seasons") moves to ``duration`` when that
  is empty, and the rating becomes unknown;
* a row typed "Movie" whose duration counts seasons is a series (Hulu has a few dozen);
* ``date_added`` may carry leading spaces or be empty (unknown, kept as null).

Values that cannot be parsed raise :class:`~cinerec.errors.DataError` naming the file, the
row (1-based record number, header excluded) and the field — or, with ``strict=False``, the
row is dropped and counted. The same film (equal normalised title, year and type) listed by
several providers becomes one item; :attr:`Catalogs.id_map` maps every source id to it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from cinerec.data.age_rating import DURATION_PATTERN, min_ages
from cinerec.data.download import MIRROR_ENV, is_url, mirror_setting
from cinerec.data.schemas import ITEMS_SCHEMA
from cinerec.errors import DataError

__all__ = [
    "COLUMNS",
    "ITEM_COLUMNS",
    "PROVIDERS",
    "CatalogFile",
    "Catalogs",
    "catalog_folder",
    "dedupe",
    "load_catalogs",
    "read_catalog",
    "title_key",
]

#: provider name -> file name, in the order providers win when merging duplicates.
PROVIDERS: Final = {
    "netflix": "netflix_titles.csv",
    "amazon_prime": "amazon_prime_titles.csv",
    "disney_plus": "disney_plus_titles.csv",
    "hulu": "hulu_titles.csv",
}

#: The header every catalog file must have (extra columns are ignored).
COLUMNS: Final = (
    "show_id",
    "type",
    "title",
    "director",
    "cast",
    "country",
    "date_added",
    "release_year",
    "rating",
    "duration",
    "listed_in",
    "description",
)

#: Columns of the item frames returned here: the ITEMS schema (which has ``providers``).
ITEM_COLUMNS: Final = tuple(ITEMS_SCHEMA.names)

_TYPES: Final = {"Movie": "movie", "TV Show": "series"}
_MINUTES: Final = re.compile(r"^(\d+)\s*min(?:ute)?s?$", re.IGNORECASE)
_SEASONS: Final = re.compile(r"^(\d+)\s*seasons?$", re.IGNORECASE)
_APOSTROPHES: Final = re.compile(r"['’‘`´]")
_NON_WORD: Final = re.compile(r"[\W_]+")
_ROLE: Final = re.compile(r"\s*\([^)]*\)")


def title_key(title: str) -> str:
    """A title reduced to what identifies it, for exact (never fuzzy) comparison.

    Casefolds, strips accents, spells "&" as "and", deletes apostrophes ("Schindler's" ->
    "schindlers"), turns every other punctuation run into one space and trims. Two titles
    match only when their keys are equal, so "Alien" and "Aliens" stay apart.

    >>> title_key("Léon: The Professional"), title_key("Mr. & Mrs. Smith")
    ('leon the professional', 'mr and mrs smith')
    """
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    return _NON_WORD.sub(" ", text).strip()


def _split_list(values: pd.Series) -> pd.Series:
    """Comma-separated cells -> lists of stripped, non-empty, de-duplicated entries."""

    def split(cell: str) -> list[str]:
        parts = [p for p in map(str.strip, cell.split(",")) if p] if cell else []
        return parts if len(set(parts)) == len(parts) else list(dict.fromkeys(parts))

    return pd.Series([split(cell) for cell in values.tolist()], index=values.index, dtype=object)


@dataclass
class CatalogFile:
    """One parsed catalog file: its items and what had to be repaired or dropped."""

    provider: str
    path: Path
    items: pd.DataFrame
    rows: int
    dropped: dict[str, int] = field(default_factory=dict)
    fixes: dict[str, int] = field(default_factory=dict)


@dataclass
class Catalogs:
    """The imported catalogs, de-duplicated across providers.

    ``items`` has the ITEMS schema columns plus ``providers`` (list of provider names);
    ``id_map`` maps every source id ``"<provider>:<show_id>"`` to the item id it ended up
    in; ``rows`` counts rows read per provider before drops and de-duplication.
    """

    items: pd.DataFrame
    id_map: pd.Series
    rows: dict[str, int]
    dropped: dict[str, int]
    fixes: dict[str, int]

    @property
    def merged(self) -> int:
        """How many source rows were folded into another provider's item."""
        return int((self.id_map.index != self.id_map.to_numpy()).sum())


def _bad(
    path: Path, strict: bool, problems: dict[str, pd.Series], frame: pd.DataFrame
) -> pd.Series:
    """Raise on the first bad row (strict) or return the mask of rows to drop (lenient)."""
    drop = pd.Series(False, index=frame.index)
    first: tuple[int, str] | None = None
    for name, mask in problems.items():
        if mask.any():
            row = int(mask.to_numpy().argmax())  # position: the frame is read with a RangeIndex
            if first is None or row < first[0]:
                first = (row, name)
            drop |= mask
    if strict and first is not None:
        row, name = first
        total = int(drop.sum())
        value = frame[name].iat[row] if name in frame.columns else ""
        raise DataError(
            f"cannot parse {value!r} ({total} bad row(s) in this file; "
            "load with strict=False to drop them)",
            file=str(path),
            row=row + 1,
            field=name,
        )
    return drop


def read_catalog(path: str | Path, provider: str, *, strict: bool = True) -> CatalogFile:
    """Parse one catalog CSV into ITEMS-schema rows (plus ``providers``).

    Raises :class:`DataError` when the file is missing, unreadable or lacks required
    columns, and — in ``strict`` mode — on the first row whose type, title, show id,
    release year, duration or date cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("catalog file not found", file=str(path))
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"not a readable CSV file ({exc})", file=str(path)) from exc
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"missing required column(s): {', '.join(missing)}", file=str(path))
    raw = raw.reset_index(drop=True)
    frame = raw[list(COLUMNS)].apply(lambda col: col.str.strip())
    rows = len(frame)

    # A rating that is really a duration: move it to an empty duration, rating unknown.
    rating_is_duration = frame["rating"].str.match(DURATION_PATTERN.pattern, case=False)
    moved = rating_is_duration & (frame["duration"] == "")
    duration = frame["duration"].where(~moved, frame["rating"])
    rating = frame["rating"].where(~rating_is_duration & (frame["rating"] != ""))

    minutes = duration.str.extract(_MINUTES.pattern, flags=re.IGNORECASE)[0]
    seasons = duration.str.extract(_SEASONS.pattern, flags=re.IGNORECASE)[0]
    date_text = frame["date_added"]
    dates = pd.to_datetime(date_text, format="%B %d, %Y", errors="coerce", utc=True)
    year_text = frame["release_year"]
    years = pd.to_numeric(year_text.where(year_text.str.fullmatch(r"\d{4}")), errors="coerce")
    kinds = frame["type"].map(_TYPES)

    problems = {
        "show_id": (frame["show_id"] == "") | frame["show_id"].duplicated(),
        "type": kinds.isna(),
        "title": frame["title"] == "",
        "release_year": (year_text != "") & years.isna(),
        "duration": (duration != "") & minutes.isna() & seasons.isna(),
        "date_added": (date_text != "") & dates.isna(),
    }
    drop = _bad(path, strict, problems, frame)
    dropped = {name: int(mask.sum()) for name, mask in problems.items() if mask.any()}

    retyped = (kinds == "movie") & seasons.notna()
    kinds = kinds.where(~retyped, "series")
    items = pd.DataFrame(
        {
            "item_id": provider + ":" + frame["show_id"],
            "title": frame["title"],
            "type": kinds,
            "synopsis": frame["description"].where(frame["description"] != ""),
            "genres": _split_list(frame["listed_in"]),
            "tags": pd.Series([[] for _ in range(rows)], index=frame.index, dtype=object),
            # Prime sometimes notes the role: "Pierce Brosnan (James Bond)" -> the actor
            "cast": _split_list(frame["cast"].str.replace(_ROLE.pattern, "", regex=True)),
            "director": _split_list(frame["director"]),
            "country": _split_list(frame["country"]),
            "year": years.astype("Int32"),
            "duration_min": pd.to_numeric(minutes).astype("Float32"),
            "seasons": pd.to_numeric(seasons).astype("Int32"),
            "episodes": pd.Series(pd.NA, index=frame.index, dtype="Int32"),
            "language": pd.Series(None, index=frame.index, dtype=object),
            "age_rating": rating,
            "min_age": min_ages(rating),
            "date_added": dates.dt.as_unit("s"),
            "providers": pd.Series(
                [[provider] for _ in range(rows)], index=frame.index, dtype=object
            ),
        }
    )[list(ITEM_COLUMNS)]
    items = items[~drop].reset_index(drop=True)
    fixes = {
        "rating_held_duration": int(rating_is_duration.sum()),
        "movie_retyped_series": int((retyped & ~drop).sum()),
    }
    return CatalogFile(provider, path, items, rows, dropped, fixes)


def catalog_folder(folder: str | Path | None = None, mirror: str | Path | None = None) -> Path:
    """Where the catalog CSVs are: ``folder``, else ``<mirror>/streaming-catalogs``.

    ``mirror`` defaults to ``$CINEREC_DATA_MIRROR`` (as for MovieLens). Without a folder or
    a local mirror a :class:`DataError` explains how to supply the files: they are never
    downloaded, because Kaggle requires a login.
    """
    if folder is not None:
        return Path(folder).expanduser()
    location = mirror_setting(mirror)
    if location is None or is_url(location):
        raise DataError(
            "no local catalog folder: download the streaming catalogs from Kaggle (login "
            "needed) and pass folder=... or a local mirror=..., or set " + MIRROR_ENV
        )
    return Path(location).expanduser() / "streaming-catalogs"


def _people(names: list[str]) -> set[frozenset[str]]:
    """Names as order-free word sets without "(role)" notes: "YOO Ah-in" == "Ah-in Yoo"."""
    return {frozenset(title_key(_ROLE.sub("", n)).split()) for n in names} - {frozenset()}


def dedupe(items: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Merge rows (of any providers) that are the same title, year and type.

    Equal keys are not enough when the people disagree: rows are kept apart when both
    list directors or both list cast and *no* name is shared in either (names compared as
    word sets, so "YOO Ah-in" equals "Ah-in Yoo"). This keeps e.g. the two different 2017
    films "Veronica" apart, at the cost of a few missed merges where providers spell
    every name differently. The merged item keeps the first provider's id (``PROVIDERS``
    order) and title; list columns are unions, synopsis/duration the first non-empty,
    the age rating comes from the first row that has one, seasons is the maximum and
    date_added the earliest. Returns the items and ``source id -> item id``.
    """
    items = items.reset_index(drop=True)
    ids = items["item_id"].to_numpy(dtype=object)
    key = items["title"].map(title_key) + "|" + items["year"].astype("string") + "|" + items["type"]
    candidates = key.duplicated(keep=False) & items["year"].notna()
    groups: dict[str, list[int]] = {}
    for at, k in zip(np.flatnonzero(candidates.to_numpy()), key[candidates], strict=True):
        groups.setdefault(k, []).append(int(at))
    owner = ids.copy()
    directors_of, cast_of = items["director"].to_numpy(), items["cast"].to_numpy()
    for positions in groups.values():
        clusters: list[tuple[set[frozenset[str]], set[frozenset[str]], str]] = []
        for pos in positions:
            directors, cast = _people(directors_of[pos]), _people(cast_of[pos])
            for cl_dirs, cl_cast, cl_id in clusters:
                agree = bool(cl_dirs & directors or cl_cast & cast)
                disagree = bool(cl_dirs and directors) or bool(cl_cast and cast)
                if disagree and not agree:
                    continue
                cl_dirs |= directors
                cl_cast |= cast
                owner[pos] = cl_id
                break
            else:
                clusters.append((directors, cast, ids[pos]))
    owners = pd.Series(owner, index=items.index, dtype=items["item_id"].dtype)
    id_map = pd.Series(owners.to_numpy(), index=items["item_id"], name="item_id")
    folded = np.flatnonzero((owners != items["item_id"]).to_numpy())
    if not len(folded):
        return items, id_map
    position = {item_id: pos for pos, item_id in enumerate(ids)}
    members: dict[int, list[int]] = {}
    for moved in folded.tolist():
        members.setdefault(position[owners.iat[moved]], []).append(moved)
    cols = {c: items[c].to_numpy(dtype=object, copy=True) for c in ITEM_COLUMNS}
    for head, rest in members.items():
        _merge_into(cols, [head, *rest])
    keep = np.ones(len(items), dtype=bool)
    keep[folded] = False
    out = pd.DataFrame({c: values[keep] for c, values in cols.items()})
    out = out.astype({c: items[c].dtype for c in ITEM_COLUMNS})
    return out, id_map


def _merge_into(cols: dict[str, np.ndarray], rows: list[int]) -> None:
    """Fold ``rows[1:]`` into ``rows[0]`` of the column arrays (see :func:`dedupe`)."""
    head = rows[0]

    def present(column: str) -> list[Any]:
        # Object-dtype cells: numbers (seasons, episodes), Timestamps (date_added), strings.
        return [v for v in (cols[column][r] for r in rows) if not pd.isna(v)]

    for column in ("genres", "tags", "cast", "director", "country", "providers"):
        cols[column][head] = list(dict.fromkeys(x for r in rows for x in cols[column][r]))
    for column in ("synopsis", "duration_min", "language"):
        values = present(column)
        cols[column][head] = values[0] if values else None
    for column in ("seasons", "episodes"):
        values = present(column)
        cols[column][head] = max(values) if values else None
    dates = present("date_added")
    cols["date_added"][head] = min(dates) if dates else None
    rated = [r for r in rows if not pd.isna(cols["age_rating"][r])]
    if rated:
        cols["age_rating"][head] = cols["age_rating"][rated[0]]
        cols["min_age"][head] = cols["min_age"][rated[0]]


def load_catalogs(
    folder: str | Path | None = None,
    *,
    mirror: str | Path | None = None,
    providers: list[str] | tuple[str, ...] | None = None,
    strict: bool = True,
    merge: bool = True,
) -> Catalogs:
    """Read the streaming catalogs the user has and return them as de-duplicated items.

    ``providers=None`` reads every known catalog file present in the folder (at least one
    must be); naming providers makes each of their files required. ``strict=False`` drops
    unparsable rows and counts them in :attr:`Catalogs.dropped` (``"provider:field"``).
    ``merge=False`` skips the cross-provider de-duplication.
    """
    where = catalog_folder(folder, mirror)
    if providers is None:
        chosen = [p for p, name in PROVIDERS.items() if (where / name).is_file()]
        if not chosen:
            raise DataError(
                f"no catalog files found (expected any of {', '.join(PROVIDERS.values())})",
                file=str(where),
            )
    else:
        unknown = [p for p in providers if p not in PROVIDERS]
        if unknown:
            raise DataError(f"unknown provider(s) {unknown}; known: {list(PROVIDERS)}")
        chosen = list(providers)
    files = [read_catalog(where / PROVIDERS[p], p, strict=strict) for p in chosen]
    items = pd.concat([f.items for f in files], ignore_index=True)
    if merge:
        items, id_map = dedupe(items)
    else:
        id_map = pd.Series(items["item_id"].to_numpy(), index=items["item_id"], name="item_id")
    fixes: dict[str, int] = {}
    for f in files:
        for name, count in f.fixes.items():
            fixes[name] = fixes.get(name, 0) + count
    return Catalogs(
        items=items,
        id_map=id_map,
        rows={f.provider: f.rows for f in files},
        dropped={f"{f.provider}:{k}": v for f in files for k, v in f.dropped.items()},
        fixes=fixes,
    )
