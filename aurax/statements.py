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
    insert_parts(model, alias)   an INSERT's column list and fields, for a caller that writes
                                 its own statement around them (values from `insert_params`)

Model signals are not sent. A model with save receivers is refused, so that none can be
skipped silently.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

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


def save_fields(obj: Model, names: Iterable[str]) -> None:
    """Write the fields `names` of a saved `obj` to its row, as
    `obj.save(update_fields=names)`; DatabaseError when the row is gone."""
    model = type(obj)
    _no_save_receivers(model)
    alias = obj._state.db or router.db_for_write(model, instance=obj)
    connection = connections[alias]
    sql, fields = _update(model, tuple(names), alias)
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
    params.append(obj.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not cursor.rowcount:
            raise DatabaseError(f"{model.__name__} {obj.pk} is gone: nothing was updated.")
