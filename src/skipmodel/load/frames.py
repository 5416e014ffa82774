"""The pandas boundary of the loaders: Arrow plays as a DataFrame whose dtypes follow the schema.

Arrow's own ``to_pandas()`` decides a column's dtype by its values: a boolean column becomes
``bool`` without a null and ``object`` (True / False / None) with one, an integer column
``int16`` or ``float64``, a date column Python ``date`` objects. A notebook then sees different
dtypes for the same column from one sample to the next. :func:`as_pandas` decides by the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:  # pandas is imported when a frame is made: ingest never loads it
    import pandas as pd

__all__ = ["as_pandas"]


def as_pandas(table: pa.Table) -> pd.DataFrame:
    """``table`` as pandas, each column's dtype following its Arrow field.

    * a nullable boolean or integer field (lags, integer track features) becomes pandas'
      nullable ``boolean`` / ``Int8`` ... ``Int64`` of the same width, nulls as ``pd.NA``
      (Arrow's own conversion gives ``object`` or ``float64`` when a null is present);
    * a field that is never null keeps its NumPy dtype (``skip_2`` is ``bool``);
    * ``date`` becomes ``datetime64[ms]`` (midnight of the day), not Python dates;
    * floats keep ``NaN`` for null, dictionary columns become categoricals.
    """
    import pandas as pd

    nullable = {
        pa.bool_(): pd.BooleanDtype(),
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
    }
    frame = table.to_pandas(types_mapper=nullable.get, date_as_object=False)
    for f in table.schema:
        if not f.nullable and f.type in nullable:  # the mapper maps by type, not by field
            frame[f.name] = frame[f.name].to_numpy(dtype=f.type.to_pandas_dtype())
    return frame
