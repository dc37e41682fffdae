from aurax.db_threads import _pool, _run, db_call  # noqa: F401
