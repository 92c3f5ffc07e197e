"""The demo dataset: MovieLens ratings joined with the streaming catalogs.

MovieLens latest-small has interactions but thin items (title, year, genres, tags); the
streaming catalogs have rich items (synopsis, cast, director, country, age rating) but no
interactions. :func:`build_demo` joins them by *exactly* equal normalised title and year,
so matched MovieLens movies gain catalog metadata and every other catalog title — movies
and TV series — becomes a cold-start item without interactions.

The join is deliberately not fuzzy: a wrong match would give a film another film's
synopsis and age rating. Titles are compared after :func:`~cinerec.data.catalogs.title_key`
(case, accents, punctuation, "&"), MovieLens' trailing articles are moved to the front
("Matrix, The" -> "The Matrix", also "Les", "La", "Il", "Das", "El", "L'" ...), and
MovieLens' parenthesised alternative titles ("(a.k.a. Se7en)", "(Cité des enfants perdus,
La)") are tried after the main title. Only when no exact key matches, keys equal after
dropping a leading "the"/"a"/"an" count ("Simpsons Movie" = "The Simpsons Movie"); on the
shared data this adds 11 matches, all checked correct. A MovieLens movie matching two
different catalog items, or a catalog item claimed by two MovieLens movies, is left
unmatched; catalog *series* are never matched (a film and a series of the same name and
year are usually different works: "Curious George" 2006, "Primeval" 2007).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pandas as pd

from cinerec.data.catalogs import ITEM_COLUMNS, Catalogs, catalog_folder, load_catalogs, title_key
from cinerec.data.dataset import Dataset

__all__ = [
    "ARTICLES",
    "build_demo",
    "join_catalogs",
    "match_titles",
    "movielens_title_keys",
    "movielens_title_variants",
]

#: Articles MovieLens moves to the end of a title ("Matrix, The", "Mariachi, El").
ARTICLES: Final = (
    "The", "A", "An",
    "Le", "La", "Les", "L'", "Un", "Une",
    "El", "Los", "Las", "Lo",
    "Il", "I", "Gli",
    "Das", "Der", "Die", "Ein", "Eine",
    "Det", "Den", "Da",
)  # fmt: skip

_ARTICLE_AT_END: Final = re.compile(
    r"^(?P<body>.+?),\s+(?P<article>" + "|".join(re.escape(a) for a in ARTICLES) + r")$"
)
_YEAR_AT_END: Final = re.compile(r"\s*\(\s*\d{4}(?:\s*[-–]\s*\d{0,4})?\s*\)\s*$")
_AKA: Final = re.compile(r"^(?:a\.?k\.?a\.?|also known as)\s+", re.IGNORECASE)
_LEADING_ARTICLE: Final = r"^(?:the|a|an) "
_MATCH_COLUMNS: Final = [
    "ml_item_id",
    "catalog_item_id",
    "ml_title",
    "catalog_title",
    "year",
    "catalog_year",
    "via",
    "exact",
]
#: columns a matched MovieLens movie takes from its catalog item
_FROM_CATALOG: Final = (
    "synopsis",
    "cast",
    "director",
    "country",
    "age_rating",
    "min_age",
    "duration_min",
    "date_added",
    "providers",
)


def _front_article(title: str) -> str:
    """ "Matrix, The" -> "The Matrix"; "Avventura, L'" -> "L'Avventura"."""
    match = _ARTICLE_AT_END.match(title.strip())
    if not match:
        return title.strip()
    article = match["article"]
    return f"{article}{match['body']}" if article.endswith("'") else f"{article} {match['body']}"


def _peel_parentheses(title: str) -> tuple[str, list[str]]:
    """Split trailing "(...)" groups off a title: main title and the groups, in order."""
    groups: list[str] = []
    rest = title.strip()
    while rest.endswith(")"):
        depth = 0
        for pos in range(len(rest) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(rest[pos], 0)
            if depth == 0:
                break
        if depth != 0 or pos == 0:  # unbalanced, or the whole title is in parentheses
            break
        groups.insert(0, rest[pos + 1 : -1].strip())
        rest = rest[:pos].rstrip()
    return rest, groups


def movielens_title_variants(title: str) -> list[str]:
    """The titles a MovieLens title stands for, best first, articles moved to the front.

    >>> movielens_title_variants("Matrix, The (1999)")
    ['The Matrix']
    >>> movielens_title_variants("Seven (a.k.a. Se7en) (1995)")
    ['Seven', 'Seven (a.k.a. Se7en)', 'Se7en']

    The first entry is the main title; the full text (parentheses included) comes next
    when it differs, because some real titles end in parentheses; then the alternatives.
    """
    text = _YEAR_AT_END.sub("", title).strip()
    main, groups = _peel_parentheses(text)
    variants = [_front_article(main), _front_article(text)]
    variants += [_front_article(_AKA.sub("", group)) for group in groups]
    return [v for v in dict.fromkeys(variants) if v]


def movielens_title_keys(title: str) -> list[str]:
    """:func:`title_key` of every variant, best first, without empties or repeats."""
    keys = (title_key(v) for v in movielens_title_variants(title))
    return [k for k in dict.fromkeys(keys) if k]


def match_titles(
    movielens_items: pd.DataFrame,
    catalog_items: pd.DataFrame,
    *,
    year_tolerance: int = 0,
) -> pd.DataFrame:
    """Match MovieLens movies to catalog *movies* by equal title key and year.

    Returns one row per accepted match: ``ml_item_id, catalog_item_id, ml_title,
    catalog_title, year, catalog_year, via, exact``: ``via`` is 0 for the main title, >0
    for the full text or an alternative title; ``exact`` is False when the keys are equal
    only after dropping a leading "the"/"a"/"an" ("Simpsons Movie", "The Simpsons Movie").

    A movie's best candidates are those with the smallest year gap, then exact keys, then
    the main title before alternatives; when these name more than one catalog item the
    movie stays unmatched, and so does every movie of a catalog item claimed by several
    movies at equally good rank (``result.attrs["ambiguous"]`` counts them).
    """
    ml = movielens_items[movielens_items["year"].notna()]
    ml_keys = pd.DataFrame(
        {
            "ml_item_id": ml["item_id"].to_numpy(),
            "ml_title": ml["title"].to_numpy(),
            "year": ml["year"].astype("int64").to_numpy(),
            "key": ml["title"].map(movielens_title_keys).to_numpy(),
        }
    ).explode("key")
    ml_keys = ml_keys[ml_keys["key"].notna()]
    ml_keys["via"] = ml_keys.groupby("ml_item_id", sort=False).cumcount()
    ml_keys["loose"] = ml_keys["key"].str.replace(_LEADING_ARTICLE, "", regex=True)
    movies = catalog_items[(catalog_items["type"] == "movie") & catalog_items["year"].notna()]
    cat = pd.DataFrame(
        {
            "catalog_item_id": movies["item_id"].to_numpy(),
            "catalog_title": movies["title"].to_numpy(),
            "catalog_year": movies["year"].astype("int64").to_numpy(),
            "catalog_key": movies["title"].map(title_key).to_numpy(),
        }
    )
    cat["loose"] = cat["catalog_key"].str.replace(_LEADING_ARTICLE, "", regex=True)
    pairs = ml_keys.merge(cat, on="loose")
    pairs["exact"] = pairs["key"] == pairs["catalog_key"]
    pairs["gap"] = (pairs["year"] - pairs["catalog_year"]).abs()
    pairs = pairs[pairs["gap"] <= year_tolerance]
    if pairs.empty:
        result = pairs[_MATCH_COLUMNS].reset_index(drop=True)
        result.attrs["ambiguous"] = 0
        return result
    # each movie: keep only its best-ranked candidates, unmatched if they disagree
    pairs["rank"] = pairs["gap"] * 1000 + (~pairs["exact"]) * 500 + pairs["via"]
    pairs = pairs[pairs["rank"] == pairs.groupby("ml_item_id")["rank"].transform("min")]
    pairs = pairs.drop_duplicates(["ml_item_id", "catalog_item_id"])
    per_movie = pairs.groupby("ml_item_id")["catalog_item_id"].transform("nunique")
    # each catalog item: claimed by one movie only (at its best rank)
    best = pairs.groupby("catalog_item_id")["rank"].transform("min")
    claims = pairs[pairs["rank"] == best].groupby("catalog_item_id")["ml_item_id"].nunique()
    contested = pairs["catalog_item_id"].map(claims) > 1
    ok = (per_movie == 1) & ~contested & (pairs["rank"] == best)
    result = pairs[ok].reset_index(drop=True)
    result = result[_MATCH_COLUMNS]
    result.attrs["ambiguous"] = int(pairs["ml_item_id"].nunique() - len(result))
    return result


def _as_list(value: object) -> list[str]:
    """A list cell (list, tuple, numpy array) as a list; missing -> []."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, Iterable) else []


def join_catalogs(movielens: Dataset, catalogs: Catalogs, *, year_tolerance: int = 0) -> Dataset:
    """Enrich MovieLens movies with their catalog items and add every other catalog title.

    Matched movies keep their MovieLens id, title, year and tags; they take synopsis,
    cast, director, country, age rating, duration, date added and providers from the
    catalog, and their genres become the MovieLens genres followed by the catalog's
    (a union, so content features see both vocabularies). Unmatched catalog items —
    movies and series — are appended unchanged and have no interactions.
    """
    ml_items = movielens.items.reset_index(drop=True)
    cat_items = catalogs.items.set_index("item_id", drop=False)
    matches = match_titles(ml_items, catalogs.items, year_tolerance=year_tolerance)
    source = cat_items.loc[matches["catalog_item_id"]].set_index(matches["ml_item_id"].to_numpy())

    items = ml_items.copy()
    if "providers" not in items.columns:
        items["providers"] = [[] for _ in range(len(items))]
    rows = items["item_id"].isin(source.index)
    ids = items.loc[rows, "item_id"]
    for column in _FROM_CATALOG:
        values = source.loc[ids, column].to_numpy()
        if column not in items.columns:
            items[column] = None
        items[column] = items[column].astype(object)
        items.loc[rows, column] = pd.Series(list(values), index=ids.index, dtype=object)
    items.loc[rows, "genres"] = pd.Series(
        [
            list(dict.fromkeys([*_as_list(a), *_as_list(b)]))
            for a, b in zip(items.loc[rows, "genres"], source.loc[ids, "genres"], strict=True)
        ],
        index=ids.index,
        dtype=object,
    )
    added = cat_items[~cat_items["item_id"].isin(matches["catalog_item_id"])]
    out = pd.concat([items, added.reset_index(drop=True)], ignore_index=True)
    for column in ITEM_COLUMNS:
        if column not in out.columns:
            out[column] = None
    dtypes = {c: catalogs.items[c].dtype for c in ITEM_COLUMNS if c in catalogs.items.columns}
    for column in ("genres", "tags", "cast", "director", "country", "providers"):
        out[column] = pd.Series([_as_list(v) for v in out[column]], index=out.index, dtype=object)
        dtypes.pop(column, None)
    out = out.astype(dtypes)
    out = out[[*ITEM_COLUMNS, *(c for c in out.columns if c not in ITEM_COLUMNS)]]

    ml_movies = int((ml_items["type"] == "movie").sum()) if "type" in ml_items else len(ml_items)
    info = dict(movielens.info)
    info.update(
        {
            "ml_movies": ml_movies,
            "matched_movies": len(matches),
            "match_rate": round(len(matches) / ml_movies, 4) if ml_movies else 0.0,
            "ambiguous_movies": matches.attrs.get("ambiguous", 0),
            "catalog_rows": sum(catalogs.rows.values()),
            "catalog_items": len(catalogs.items),
            "catalog_items_added": len(added),
            "series": int((out["type"] == "series").sum()),
            "year_tolerance": year_tolerance,
        }
    )
    return Dataset(
        name="demo",
        items=out,
        interactions=movielens.interactions,
        users=movielens.users,
        info=info,
    )


def build_demo(
    *,
    mirror: str | Path | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
    catalogs: str | Path | None = None,
    year_tolerance: int = 0,
) -> Dataset:
    """MovieLens latest-small joined with the streaming catalogs (see module docstring).

    ``mirror`` is a folder holding ``ml-latest-small/`` and ``streaming-catalogs/``;
    ``catalogs`` overrides where the catalog CSVs are (they are never downloaded).
    ``Dataset.info`` reports ``matched_movies``, ``match_rate`` (matched / MovieLens
    movies), ``catalog_items``, ``series`` and ``build_seconds``.
    """
    from cinerec.data.movielens import load_movielens

    start = time.perf_counter()
    folder = catalog_folder(catalogs, mirror)  # fail fast, before any download
    found = load_catalogs(folder)
    movielens = load_movielens("latest-small", mirror=mirror, cache=cache, progress=progress)
    demo = join_catalogs(movielens, found, year_tolerance=year_tolerance)
    demo.info["build_seconds"] = round(time.perf_counter() - start, 2)
    return demo
