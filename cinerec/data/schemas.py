"""Typed schemas of the three tables cinerec stores as Parquet.

* items — the catalog (movies and series) with text, people and metadata;
* users — optional demographics and stated preferences;
* interactions — one row per event a user had with an item.

Ids are strings everywhere so that MovieLens integers, catalog show ids and a user's own
keys live in one id space. The schemas are the single source of truth for column names
and types; loaders produce frames that pass :func:`conform`.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import pyarrow as pa

ITEM_TYPES: Final = ("movie", "series")
EVENTS: Final = ("rating", "view", "watch", "like", "skip", "click")


def _schema(fields: list[pa.Field]) -> pa.Schema:
    """``pa.schema`` over a list stated to hold fields (mixed field types infer as ``object``)."""
    return pa.schema(fields)


ITEMS_SCHEMA: Final = _schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("type", pa.string()),  # one of ITEM_TYPES
        pa.field("synopsis", pa.string()),
        pa.field("genres", pa.list_(pa.string())),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("cast", pa.list_(pa.string())),
        pa.field("director", pa.list_(pa.string())),
        pa.field("year", pa.int32()),
        pa.field("duration_min", pa.float32()),
        pa.field("seasons", pa.int32()),
        pa.field("episodes", pa.int32()),
        pa.field("country", pa.list_(pa.string())),
        pa.field("language", pa.string()),
        pa.field("age_rating", pa.string()),  # the source label, e.g. "TV-MA", "PG-13", "16+"
        pa.field("min_age", pa.int32()),  # the label normalised to a minimum viewer age
        pa.field("date_added", pa.timestamp("s", tz="UTC")),
        pa.field("providers", pa.list_(pa.string())),  # streaming services carrying the item
    ]
)

USERS_SCHEMA: Final = _schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("age", pa.int32()),
        pa.field("gender", pa.string()),
        pa.field("country", pa.string()),
        pa.field("preferred_languages", pa.list_(pa.string())),
        pa.field("preferred_genres", pa.list_(pa.string())),
        pa.field("max_age_rating", pa.int32()),
    ]
)

INTERACTIONS_SCHEMA: Final = _schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),  # one of EVENTS
        pa.field("value", pa.float32(), nullable=False),  # rating, or 1.0
        pa.field("watch_seconds", pa.float32()),
        pa.field("timestamp", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("session_id", pa.string()),
    ]
)

REQUIRED: Final = {
    "items": ("item_id",),
    "users": ("user_id",),
    "interactions": ("user_id", "item_id", "timestamp"),
}

SCHEMAS: Final = {
    "items": ITEMS_SCHEMA,
    "users": USERS_SCHEMA,
    "interactions": INTERACTIONS_SCHEMA,
}


def empty_frame(table: str) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes."""
    return SCHEMAS[table].empty_table().to_pandas()


def with_all_columns(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` plus every schema column it lacks, all null, typed as a stored table reads.

    An imported catalog of item ids alone then has the columns a saved-and-loaded one
    has (``genres``, ``type``, ...), so code reading them sees missing values rather
    than an absent column. Present columns are left as they are; ``frame`` is not changed.
    """
    missing = [f for f in SCHEMAS[table] if f.name not in frame.columns]
    if not missing:
        return frame
    n = len(frame)
    nulls = pa.table({f.name: pa.nulls(n, type=f.type) for f in missing}).to_pandas()
    nulls.index = frame.index
    return pd.concat([frame, nulls], axis=1)


def conform(frame: pd.DataFrame, table: str) -> pa.Table:
    """Return ``frame`` as an Arrow table with exactly the table's schema.

    Missing optional columns are added as nulls; extra columns are dropped. Raises
    ``pyarrow.ArrowInvalid`` / ``ArrowTypeError`` when a column cannot be cast — loaders
    validate first so this only fires on programming errors.
    """
    schema = SCHEMAS[table]
    frame = frame.reset_index(drop=True)
    columns = {}
    for field in schema:
        if field.name in frame.columns:
            array = pa.Array.from_pandas(frame[field.name])
            columns[field.name] = array.cast(field.type, safe=not pa.types.is_timestamp(field.type))
        else:
            columns[field.name] = pa.nulls(len(frame), type=field.type)
    return pa.table(columns, schema=schema)
