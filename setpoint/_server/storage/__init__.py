"""Storage: one interface (``base.py``), one SQL implementation for SQLite and PostgreSQL (``sql.py``)."""

from setpoint._server.storage.base import AlreadyExistsError, ReadTx, StaleRevisionError, Storage, StorageError, WriteTx
from setpoint._server.storage.engines import normalize_url, open_storage, sqlite_url

__all__ = [
    "AlreadyExistsError",
    "ReadTx",
    "StaleRevisionError",
    "Storage",
    "StorageError",
    "WriteTx",
    "normalize_url",
    "open_storage",
    "sqlite_url",
]
