"""DuckDB: case-insensitive identifiers, DECIMAL(38,9), one action per ALTER TABLE.

Done in place: ADD COLUMN, DROP NOT NULL, and the lossless widenings BIGINT -> DECIMAL(38,9)
(every int64 fits), DATE -> TIMESTAMP / TIMESTAMPTZ and TIMESTAMP -> TIMESTAMPTZ (read as
UTC). DuckDB rewrites the column's segments but takes no long lock and loses nothing. BIGINT ->
DOUBLE is not done (integers beyond 2**53 would lose digits), nor is anything -> VARCHAR.
"""

from __future__ import annotations

from decimal import Decimal

from ..schema.types import Column, DataType
from .base import Dialect, T

DECIMAL_SCALE = 9
DECIMAL_PRECISION = 38


class DuckDB(Dialect):
    name = "duckdb"
    case_insensitive = True
    types = {
        **Dialect.types,
        T.NULL: "VARCHAR",
        T.TEXT: "VARCHAR",
        T.DOUBLE: "DOUBLE",
        T.DECIMAL: f"DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})",
        T.TIMESTAMPTZ: "TIMESTAMPTZ",
    }
    in_place = frozenset(
        {
            (T.BIGINT, T.DECIMAL),
            (T.DATE, T.TIMESTAMP),
            (T.DATE, T.TIMESTAMPTZ),
            (T.TIMESTAMP, T.TIMESTAMPTZ),
        }
    )
    multi_action_alter = False

    def fits_decimal(self, value: Decimal) -> bool:
        if not value.is_finite():
            return False
        _, digits, exp = value.normalize().as_tuple()
        frac = max(-exp, 0)
        whole = len(digits) + exp
        return frac <= DECIMAL_SCALE and whole <= DECIMAL_PRECISION - DECIMAL_SCALE

    def alter_type(self, col: Column, new: DataType) -> list[str]:
        name = self.quote(col.ident or col.name)
        if new == T.TIMESTAMPTZ:
            # a naive timestamp is read as UTC whatever the session's time zone
            return [f"ALTER COLUMN {name} SET DATA TYPE TIMESTAMPTZ USING timezone('UTC', {name})"]
        return [f"ALTER COLUMN {name} SET DATA TYPE {self.type_name(new)}"]
