"""pyarrow adapter: the only module that imports it. Parses a CSV body of numbers in C++.

``pyarrow.csv`` reads 10,000 rows of 21 numbers in about 8 ms, against about 35 ms for
``numpy.loadtxt`` and more than 100 ms for ``csv.reader`` plus ``float`` per cell. It is
imported on the first CSV body, not at start-up: it adds about 26 MiB to the process,
which a service fed JSON only does not need to carry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def number_grid(
    data: bytes, columns: int, int_column: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None:
    """Rows of ``columns`` comma-separated numbers (no header) as a float64 grid without
    ``int_column`` and that column as int64; ``None`` if any line is not such a row: a
    cell that is empty or not a number, a row of another width, an int column's cell that
    is not an integer. Empty lines are skipped. One thread: the server's other work needs
    the second core more than a 10 ms parse does."""
    import pyarrow as pa  # on first use: see the docstring
    import pyarrow.csv as pacsv

    names = [f"c{j}" for j in range(columns)]
    types: dict[str, Any] = {n: pa.float64() for n in names}
    types[names[int_column]] = pa.int64()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(quote_char=False, double_quote=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[], strings_can_be_null=False
            ),
            # malloc's, not arrow's own allocator, which kept ~15 MiB more after its
            # buffers were freed: the table is copied out and dropped at once
            memory_pool=pa.system_memory_pool(),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    n = table.num_rows
    grid = np.empty((n, columns - 1), dtype=np.float64)
    at = 0
    for j, name in enumerate(names):
        if j != int_column:
            _copy_column(table.column(name), grid[:, at])
            at += 1
    ints = np.empty(n, dtype=np.int64)
    _copy_column(table.column(names[int_column]), ints)
    return grid, ints


def _copy_column(column: Any, out: npt.NDArray[Any]) -> None:
    """Copy a chunked column of 8-byte numbers (no nulls: the read refuses them) into
    ``out``, reading each chunk's value buffer. ``to_numpy`` would do the same but
    imports pandas on its first call: about 40 MiB for the server to carry."""
    at = 0
    for chunk in column.chunks:
        k = len(chunk)
        values = chunk.buffers()[1]
        out[at : at + k] = np.frombuffer(values, dtype=out.dtype, count=k, offset=chunk.offset * 8)
        at += k
