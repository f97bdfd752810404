"""PostgreSQL: 63-byte identifiers, JSONB, unbounded NUMERIC, ``lock_timeout``.

Done in place (catalog only, no table rewrite): ADD COLUMN (nullable, no default), DROP NOT
NULL, and TIMESTAMP -> TIMESTAMPTZ, which PostgreSQL 12+ does without a rewrite when the
session time zone is UTC (so the script sets it). Every other type change (BIGINT -> NUMERIC or
DOUBLE PRECISION, DATE -> TIMESTAMP, anything -> TEXT) rewrites the table under an ACCESS
EXCLUSIVE lock and is never done by the sentinel: the rows that need it are handled per the
contract (quarantined, discarded, or the batch refused).
"""

from __future__ import annotations

from decimal import Decimal

from ..schema.types import Column, DataType
from .base import Dialect, T


class Postgres(Dialect):
    name = "postgres"
    max_ident_bytes = 63  # NAMEDATALEN - 1
    types = {
        **Dialect.types,
        T.JSON: "JSONB",
    }
    in_place = frozenset({(T.TIMESTAMP, T.TIMESTAMPTZ)})
    preamble = ("SET LOCAL lock_timeout = '5s'",)
    rejects_nul = True  # text and jsonb cannot hold U+0000
    max_columns = 1600  # MaxHeapAttributeNumber

    def fits_decimal(self, value: Decimal) -> bool:
        """NUMERIC holds up to 131,072 digits before the decimal point and 16,383 after."""
        if not value.is_finite():
            return False
        _, digits, exp = value.as_tuple()
        return len(digits) + exp <= 131_072 and -exp <= 16_383

    def alter_type(self, col: Column, new: DataType) -> list[str]:
        if new == T.TIMESTAMPTZ:
            # without USING and with the session in UTC this is a catalog change only
            return ["SET LOCAL timezone = 'UTC'", *super().alter_type(col, new)]
        return super().alter_type(col, new)
