"""Precision formats: the one table that compile, bench, report and the backends read."""
PRECISIONS = ("fp32", "fp16", "int8")
