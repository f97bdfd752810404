"""The schema sentinel: inference, delta, contracts, DDL plans and row checks."""

from .contract import Contract
from .infer import Inferrer, infer
from .plan import Change, Delta, Plan, plan
from .rows import check_rows, coerce_row, row_converter
from .types import Column, DataType, Schema

__all__ = [
    "Change",
    "Column",
    "Contract",
    "DataType",
    "Delta",
    "Inferrer",
    "Plan",
    "Schema",
    "check_rows",
    "coerce_row",
    "infer",
    "plan",
    "row_converter",
]
