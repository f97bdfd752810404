"""The schema sentinel: inference, delta, contracts."""

from .types import Column, DataType, Schema

__all__ = ["Column", "DataType", "Schema"]
