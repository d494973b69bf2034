"""Data sets shipped with jaxreg, and a strict reader for numeric CSV tables.

Only NumPy and the standard library are used here, so ``import jaxreg.datasets`` is cheap.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "load_diabetes", "read_csv"]


class Dataset(NamedTuple):
    """A regression or classification table.

    Attributes:
      X: features ``(n_samples, n_features)``, float64.
      y: target ``(n_samples,)``, float64.
      feature_names: the ``n_features`` column names of ``X``.
      target_name: the column name of ``y``.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str


def load_diabetes() -> Dataset:
    """The diabetes data of the LARS paper: 442 patients, 10 baseline variables, one response.

    Source: Bradley Efron, Trevor Hastie, Iain Johnstone and Robert Tibshirani (2004), "Least Angle
    Regression", *Annals of Statistics* 32(2), 407-499 (data from
    https://www4.stat.ncsu.edu/~boos/var.select/diabetes.html). The values are the original,
    unscaled measurements (the paper standardizes them before fitting):

    ==========  ========================================================
    ``age``     age in years
    ``sex``     1 or 2
    ``bmi``     body mass index
    ``bp``      average blood pressure
    ``s1``      tc, total serum cholesterol
    ``s2``      ldl, low-density lipoproteins
    ``s3``      hdl, high-density lipoproteins
    ``s4``      tch, total cholesterol / HDL
    ``s5``      ltg, log of serum triglycerides level
    ``s6``      glu, blood sugar level
    ``y``       (target) a measure of disease progression one year after baseline
    ==========  ========================================================

    The table is ``jaxreg/data/diabetes.csv`` inside the installed package.

    Returns:
      :class:`Dataset` with ``X`` of shape ``(442, 10)`` and ``y`` of shape ``(442,)``.

    Example:
      >>> from jaxreg.datasets import load_diabetes
      >>> data = load_diabetes()
      >>> data.X.shape, data.feature_names[:3], data.target_name
      ((442, 10), ('age', 'sex', 'bmi'), 'y')
    """
    text = resources.files("jaxreg").joinpath("data", "diabetes.csv").read_text(encoding="utf-8")
    return _parse(io.StringIO(text), "diabetes.csv", "y")


def read_csv(path: str | os.PathLike[str], target: str) -> Dataset:
    """Read a CSV file with a header row and numeric cells; ``target`` names the column of ``y``.

    Every other column is a feature. The reader is strict: an empty cell, a cell that is not a
    finite number in decimal notation (ASCII digits, optional sign, point and exponent: not
    ``1_000``, which Python's ``float`` reads), a row with the wrong number of cells, a duplicate
    column name or a missing
    ``target`` raises ``ValueError`` naming the line and the column. A file that cannot be opened
    raises ``OSError``.

    Example:
      >>> import os, tempfile
      >>> from jaxreg.datasets import read_csv
      >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
      >>> with open(path, "w") as f:
      ...     _ = f.write("a,b,y\\n1,2,3\\n4,5,6\\n")
      >>> data = read_csv(path, target="y")
      >>> data.X.tolist(), data.y.tolist(), data.feature_names
      ([[1.0, 2.0], [4.0, 5.0]], [3.0, 6.0], ('a', 'b'))
    """
    name = os.fspath(path)
    with open(name, newline="", encoding="utf-8-sig") as f:
        return _parse(f, name, target)


def _parse(f: io.TextIOBase, name: str, target: str) -> Dataset:
    reader = csv.reader(f)
    try:
        header = next(reader, None)
        while header is not None and not any(c.strip() for c in header):
            header = next(reader, None)
        if header is None:
            raise ValueError(f"{name} is empty")
        header = [c.strip() for c in header]
        if any(not c for c in header):
            raise ValueError(f"{name}: the header (line {reader.line_num}) has an empty column name")
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:
            raise ValueError(f"{name}: duplicate column name(s) in the header: {', '.join(dup)}")
        if target not in header:
            raise ValueError(f"{name} has no column {target!r}; its columns are: {', '.join(header)}")
        if len(header) < 2:
            raise ValueError(f"{name} has no feature columns besides the target {target!r}")
        rows = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{name}, line {reader.line_num}: {len(row)} cells, but the header has {len(header)}"
                )
            rows.append([_number(c, name, reader.line_num, col) for c, col in zip(row, header)])
    except csv.Error as exc:
        raise ValueError(f"{name}, line {reader.line_num}: not a valid CSV row ({exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not a UTF-8 text file") from None
    if not rows:
        raise ValueError(f"{name} has a header but no data rows")
    table = np.array(rows, dtype=np.float64)
    j = header.index(target)
    features = tuple(c for c in header if c != target)
    return Dataset(np.delete(table, j, axis=1), table[:, j].copy(), features, target)


#: a number as CSV files write it: ASCII digits, an optional sign, decimal point and exponent.
#: Python's ``float`` takes more (``1_000``, digits of other scripts), which a data file does not mean.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def _number(cell: str, name: str, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise ValueError(
            f"{name}, line {line}: empty cell in column {column!r} (missing values are not supported)"
        )
    if not (_DECIMAL.fullmatch(text) or _NON_FINITE.fullmatch(text)):
        raise ValueError(f"{name}, line {line}: non-numeric value {text!r} in column {column!r}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{name}, line {line}: non-finite value {text!r} in column {column!r}")
    return value
