"""Inserts and updates whose SQL is built once per model, column set and database.

Django compiles a statement's SQL every time it runs it. For the writes of a chat send (the
question, the answer, the conversation's new leaf), that compiling cost more than running the
statements, on the database thread the send waits for, where it shares the GIL with the
event loop. These functions build the same SQL once, from the models' own fields: the
columns, the values as `save()` takes them (`pre_save`: defaults set at construction,
`auto_now_add`, `auto_now`) and their conversion for the database (`get_db_prep_save`) are
the fields' own, so nothing about a model is repeated here.

    insert(obj)                  as obj.save(force_insert=True)
    save_fields(obj, names)      as obj.save(update_fields=names)
    update_fields(obj, names)    the same for a row that may be gone (False then)
    insert_parts(model, alias)   an INSERT's column list and fields, for a caller that writes
                                 its own statement around them (values from `insert_params`)
    select_parts(model, alias, related)
                                 a SELECT's columns and tables for a row of `model` (and of
                                 the models its foreign keys `related` point to, as
                                 `select_related`), and the reader that makes the instance
                                 from a fetched row, as the ORM does

Model signals are not sent. A model with save receivers is refused, so that none can be
skipped silently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import DatabaseError, connections, router
from django.db.models import Model
from django.db.models.signals import post_save, pre_save


def _no_save_receivers(model: type[Model]) -> None:
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        raise TypeError(f"{model.__name__} has save receivers: save it with save()")


@functools.lru_cache(maxsize=64)
def insert_parts(model: type[Model], alias: str) -> tuple[str, tuple]:
    """`INSERT INTO "table" ("column", ...)` for every column `save()` writes, and their
    fields in that order."""
    meta = model._meta
    quote = connections[alias].ops.quote_name
    fields = tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field)
    return (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})",
        fields,
    )


def insert_params(obj: Model, fields: tuple, alias: str) -> list:
    """The values of `fields` as `obj.save(force_insert=True)` would write them."""
    _no_save_receivers(type(obj))
    obj._prepare_related_fields_for_save(operation_name="save")  # refuses unsaved relations
    connection = connections[alias]
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


@functools.lru_cache(maxsize=64)
def _insert(model: type[Model], alias: str) -> tuple[str, tuple, bool]:
    meta = model._meta
    connection = connections[alias]
    quote = connection.ops.quote_name
    head, fields = insert_parts(model, alias)
    sql = f"{head} VALUES ({', '.join(['%s'] * len(fields))})"
    returning = meta.auto_field is not None and connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {quote(meta.auto_field.column)}"
    return sql, fields, returning


def insert(obj: Model) -> Model:
    """Insert `obj` as a new row and set its primary key, as `obj.save(force_insert=True)`."""
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    sql, fields, returning = _insert(model, alias)
    params = insert_params(obj, fields, alias)
    auto_field = model._meta.auto_field
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            setattr(obj, auto_field.attname, cursor.fetchone()[0])
        elif auto_field is not None:
            setattr(
                obj,
                auto_field.attname,
                connection.ops.last_insert_id(cursor, model._meta.db_table, auto_field.column),
            )
    obj._state.adding = False
    obj._state.db = alias
    return obj


@functools.lru_cache(maxsize=256)
def _update(model: type[Model], names: tuple[str, ...], alias: str) -> tuple[str, tuple]:
    meta = model._meta
    quote = connections[alias].ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    return sql, fields


def update_fields(obj: Model, names: Iterable[str]) -> bool:
    """Write the fields `names` of `obj` to the row with its primary key, as
    `obj.save(update_fields=names)` does; False when there is no such row."""
    model = type(obj)
    _no_save_receivers(model)
    alias = obj._state.db or router.db_for_write(model, instance=obj)
    connection = connections[alias]
    sql, fields = _update(model, tuple(names), alias)
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
    params.append(obj.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount)


def save_fields(obj: Model, names: Iterable[str]) -> None:
    """`update_fields` of a saved `obj`: DatabaseError when its row is gone."""
    if not update_fields(obj, names):
        raise DatabaseError(f"{type(obj).__name__} {obj.pk} is gone: nothing was updated.")


@dataclass(frozen=True)
class Selected:
    """What `select_parts` builds: `SELECT {columns} FROM {tables} WHERE ...` fetches rows
    whose first `width` values `read` turns into an instance."""

    columns: str
    tables: str
    width: int
    read: Callable[[Sequence], Model]


def _reader(model: type[Model], alias: str, table: str):
    """Turns `model`'s values in a row into an instance: each value converted by the
    backend's and the field's converters, as the ORM's compiler does, then `from_db`."""
    connection = connections[alias]
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    converting = []
    for index, field in enumerate(fields):
        column = field.get_col(table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            converting.append((index, converters, column))

    def read(values: Sequence) -> Model:
        values = list(values)
        for index, converters, column in converting:
            for converter in converters:
                values[index] = converter(values[index], column, connection)
        return model.from_db(alias, names, values)

    return read, len(fields)


@functools.lru_cache(maxsize=64)
def select_parts(model: type[Model], alias: str, related: tuple[str, ...] = ()) -> Selected:
    """The columns and tables of a SELECT of `model`'s rows with, for each foreign key named
    in `related`, the row it points to (joined; None when the key is null), read as
    `Model.objects.select_related(*related)` reads them. Django compiles a query's SQL every
    time it runs it: for a read that a chat send waits for, that cost more than running it."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    table = quote(meta.db_table)
    parts = [(model, meta.db_table, None)]
    tables = [table]
    for name in related:
        field = meta.get_field(name)
        if not field.many_to_one:
            raise TypeError(f"{model.__name__}.{name} is not a foreign key")
        # Joined under an alias of their own: a key may point to the same table.
        joined = f"related_{name}"
        join = "LEFT OUTER JOIN" if field.null else "INNER JOIN"
        tables.append(
            f"{join} {quote(field.related_model._meta.db_table)} {quote(joined)} ON"
            f" {quote(joined)}.{quote(field.target_field.column)} = {table}.{quote(field.column)}"
        )
        parts.append((field.related_model, joined, field))
    columns, readers, start = [], [], 0
    for part_model, part_table, field in parts:
        columns += [
            f"{quote(part_table)}.{quote(f.column)}" for f in part_model._meta.concrete_fields
        ]
        read, width = _reader(part_model, alias, part_table)
        # The joined row's own key: NULL when a nullable foreign key points nowhere.
        key = start + part_model._meta.concrete_fields.index(field.target_field) if field else 0
        readers.append((start, start + width, read, field, key))
        start += width
    (_, width, read_main, _, _), joined = readers[0], readers[1:]

    def read(row: Sequence) -> Model:
        obj = read_main(row[:width])
        for begin, end, read_joined, field, key in joined:
            field.set_cached_value(obj, None if row[key] is None else read_joined(row[begin:end]))
        return obj

    return Selected(columns=", ".join(columns), tables=" ".join(tables), width=start, read=read)
