"""Fixed-size sample blocks in Parquet: stored as binary, read back as numbers.

Parquet has no 16-bit integers and encodes a fixed-size list element by
element, with repetition levels, which made writing ADC waveforms the
bottleneck of decoding (about 90 MB/s here). Stored instead as one
``fixed_size_binary`` block per channel (the little-endian bytes of its
samples, exactly as the DAQ recorded them) they write at memory speed.

A packed field carries the metadata ``na64.block = "<dtype>,<length>"``
(e.g. ``"<u2,32"``); :func:`unpack_blocks` turns it back into a fixed-size
list of numbers, zero-copy. Readers other than :func:`recon.io.tables.read_events`
see the bytes, and unpack them with ``numpy.frombuffer(..., "<u2")``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["BLOCK_KEY", "pack_blocks", "unpack_blocks"]

BLOCK_KEY = b"na64.block"


def pack_blocks(table: pa.Table) -> pa.Table:
    """Replace every fixed-size list of numbers, at any depth, by binary blocks."""
    return _map_table(table, _pack)


def unpack_blocks(table: pa.Table) -> pa.Table:
    """Inverse of :func:`pack_blocks` for fields that carry the block metadata."""
    return _map_table(table, _unpack)


def _map_table(table: pa.Table, convert) -> pa.Table:
    arrays, fields = [], []
    for column, field in zip(table.columns, table.schema, strict=True):
        chunks = [convert(chunk, field) for chunk in column.chunks]
        new_field = chunks[0][1] if chunks else field
        arrays.append(pa.chunked_array([a for a, _ in chunks], type=new_field.type))
        fields.append(new_field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=table.schema.metadata))


def _pack(array: pa.Array, field: pa.Field) -> tuple[pa.Array, pa.Field]:
    t = array.type
    if pa.types.is_fixed_size_list(t) and _is_number(t.value_type) and array.null_count == 0:
        values = _numbers(array.flatten())
        width = t.list_size * values.dtype.itemsize
        packed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), len(array), [None, pa.py_buffer(np.ascontiguousarray(values))]
        )
        tag = f"{values.dtype.newbyteorder('<').str},{t.list_size}".encode()
        metadata = {**(field.metadata or {}), BLOCK_KEY: tag}
        return packed, pa.field(field.name, packed.type, field.nullable, metadata)
    return _recurse(array, field, _pack)


def _numbers(values: pa.Array) -> np.ndarray:
    """Zero-copy numpy view of a primitive array without nulls (``to_numpy`` imports pandas)."""
    dtype = np.dtype(values.type.to_pandas_dtype())
    data = np.frombuffer(values.buffers()[1], dtype=dtype)
    return data[values.offset : values.offset + len(values)]


def _unpack(array: pa.Array, field: pa.Field) -> tuple[pa.Array, pa.Field]:
    tag = (field.metadata or {}).get(BLOCK_KEY)
    if tag is not None and pa.types.is_fixed_size_binary(array.type):
        dtype, length = tag.decode().split(",")
        raw = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        width = array.type.byte_width
        raw = raw[array.offset * width : (array.offset + len(array)) * width]
        numbers = raw.view(np.dtype(dtype))
        # from the buffer, not pa.array(): that one imports pandas (~0.3 s per process)
        values = pa.Array.from_buffers(pa.from_numpy_dtype(numbers.dtype), numbers.size,
                                       [None, pa.py_buffer(numbers)])
        item = pa.field("item", values.type, nullable=False)
        unpacked = pa.FixedSizeListArray.from_arrays(values, type=pa.list_(item, int(length)))
        metadata = {k: v for k, v in field.metadata.items() if k != BLOCK_KEY} or None
        return unpacked, pa.field(field.name, unpacked.type, field.nullable, metadata)
    return _recurse(array, field, _unpack)


def _recurse(array: pa.Array, field: pa.Field, convert) -> tuple[pa.Array, pa.Field]:
    t = array.type
    if pa.types.is_struct(t) and array.null_count == 0:
        children = [convert(child, t.field(i)) for i, child in enumerate(array.flatten())]
        new_fields = [f for _, f in children]
        new = pa.StructArray.from_arrays([a for a, _ in children], fields=new_fields)
        return new, pa.field(field.name, new.type, field.nullable, field.metadata)
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and array.null_count == 0:
        values, value_field = convert(array.values, t.value_field)
        list_type = (pa.large_list if pa.types.is_large_list(t) else pa.list_)(value_field)
        new = type(array).from_arrays(array.offsets, values, type=list_type)
        return new, pa.field(field.name, new.type, field.nullable, field.metadata)
    return array, field


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)
