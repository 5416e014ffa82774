"""Arrow <-> NumPy conversions shared by the store's writers and readers (no copies where Arrow
allows a view)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def np_array(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A NumPy numeric or bool array (``mask`` True = null) as Arrow, sharing its memory.

    ``pa.array`` on NumPy input imports pandas (about a second of an ingest) to check for pandas
    objects; these arrays never are, so the buffers are wrapped directly.
    """
    values = np.ascontiguousarray(values)
    n = len(values)
    if values.dtype == np.bool_:
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
        arrow_type = pa.bool_()
    else:
        data = pa.py_buffer(values)
        arrow_type = pa.from_numpy_dtype(values.dtype)
    validity, nulls = None, 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
        nulls = int(np.count_nonzero(mask))
    return pa.Array.from_buffers(arrow_type, n, [validity, data], null_count=nulls)


def str_array(values: list[str]) -> pa.Array:
    """A short list of Python strings as an Arrow string array (without ``pa.array``, as above)."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), data])


def bool_np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a NumPy bool array (nulls as False).

    ``np.asarray`` on a boolean Arrow array goes through pyarrow's pandas conversion, which
    imports pandas (about a second) and is slower than this cast of the bit-packed values.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = arr.fill_null(False)
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    return np_view(arr.cast(pa.uint8())).view(np.bool_)


def int_np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer Arrow array as int64 NumPy, nulls as 0 (no ``fill_null``/``to_numpy``: they
    import pandas)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    out = np_view(arr).astype(np.int64)
    if arr.null_count:
        out[bool_np(arr.is_null())] = 0
    return out


def np_view(arr: pa.Array) -> np.ndarray:
    """The values buffer of a primitive array without nulls as NumPy (no copy, no null check)."""
    dtype = arr.type.to_pandas_dtype()
    data = arr.buffers()[1]
    return np.frombuffer(data, dtype=dtype)[arr.offset : arr.offset + len(arr)]
