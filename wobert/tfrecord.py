"""TFRecord files of ``tf.train.Example`` records with int64 features, without TensorFlow:
the CRC-32C of the record framing, protobuf varints, an atomic writer and a record counter."""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wobert.errors import UserError
from wobert.files import replace_file


def _crc_byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


class Crc32c:
    """CRC-32C (Castagnoli) in NumPy, by linearity: the CRC is the XOR of each byte's
    contribution at its distance from the end, plus that of the initial value."""

    BYTE = _crc_byte_table()

    def __init__(self) -> None:
        self.tail = self.BYTE[None, :]  # tail[p, v]: byte v followed by p zero bytes
        self.init = np.array([0xFFFFFFFF], np.uint32)  # init[n]: 0xFFFFFFFF after n zero bytes

    def _grow(self, n: int) -> None:
        rows, inits = [self.tail[-1]], [self.init[-1]]
        for _ in range(len(self.tail), max(n, 2 * len(self.tail))):
            rows.append(self.BYTE[rows[-1] & 0xFF] ^ (rows[-1] >> 8))
            inits.append(self.BYTE[inits[-1] & 0xFF] ^ (inits[-1] >> 8))
        self.tail = np.vstack([self.tail, np.array(rows[1:])])
        self.init = np.concatenate([self.init, np.array(inits[1:], np.uint32)])

    def __call__(self, data: bytes) -> int:
        n = len(data)
        if n >= len(self.tail):
            self._grow(n + 1)
        values = np.frombuffer(data, np.uint8)
        crc = np.bitwise_xor.reduce(self.tail[np.arange(n - 1, -1, -1), values]) if n else 0
        return int(crc ^ self.init[n] ^ 0xFFFFFFFF)

    def masked(self, data: bytes) -> int:
        """The masked CRC that TFRecord files store."""
        crc = self(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class Varints:
    """Protobuf varints of the non-negative ints below ``size`` from a table (fast in pure
    Python), and ``tf.train.Example`` messages of int64 lists built from them."""

    def __init__(self, size: int) -> None:
        self.table = [self.encode(i) for i in range(size)]

    @staticmethod
    def encode(value: int) -> bytes:
        out = bytearray()
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
        return bytes(out)

    def field(self, tag: bytes, payload: bytes) -> bytes:
        """A length-delimited protobuf field (``tag`` is its key byte)."""
        n = len(payload)
        return tag + (self.table[n] if n < len(self.table) else self.encode(n)) + payload

    def example(self, features: dict[str, Sequence[int]]) -> bytes:
        """``{name: int list}`` (ints below ``size``) serialized as a ``tf.train.Example``:
        Example.features > Features.feature map entry (key, value) > Feature.int64_list >
        Int64List.value (packed)."""
        f, table = self.field, self.table
        entries = []
        for name, values in features.items():
            int64_list = f(b"\x0a", b"".join(map(table.__getitem__, values)))
            entries.append(f(b"\x0a", f(b"\x0a", name.encode()) + f(b"\x12", f(b"\x1a", int64_list))))
        return f(b"\x0a", b"".join(entries))


class RecordWriter:
    """Writes ``tf.train.Example`` records of int64 features to a TFRecord file, atomically:
    the data goes to ``PATH.tmp``, which ``close()`` renames to ``PATH``."""

    def __init__(self, path: Path, varints: Varints, crc: Crc32c) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.varints, self.crc = varints, crc
        self.file = open(self.tmp, "wb")
        self.sha256 = hashlib.sha256()

    def write(self, features: dict[str, Sequence[int]]) -> None:
        data = self.varints.example(features)
        header = struct.pack("<Q", len(data))
        record = (header + struct.pack("<I", self.crc.masked(header)) + data
                  + struct.pack("<I", self.crc.masked(data)))
        self.file.write(record)
        self.sha256.update(record)

    def close(self) -> str:
        """Finish the file (fsync + rename); returns its sha256."""
        self.file.close()
        replace_file(self.tmp, self.path)
        return self.sha256.hexdigest()


def count_records(path: Path) -> int:
    """The records of a TFRecord file, by walking its length headers; a file that does not end
    at a record boundary raises ``UserError``."""
    count, at, size = 0, 0, path.stat().st_size
    with open(path, "rb") as f:
        while at < size:
            header = f.read(12)  # length (8 bytes) and its CRC
            if len(header) < 12 or at + 16 + struct.unpack("<Q", header[:8])[0] > size:
                raise UserError(f"{path}: cut short inside record {count + 1} (at byte {at:,})")
            at += 16 + struct.unpack("<Q", header[:8])[0]
            f.seek(at)
            count += 1
    return count
