"""CRC64NVME as awscrt.checksums.crc64nvme computes it (reflected polynomial 0x9A6C9329AC4BC9B5,
initial value and final XOR all ones), for moto_server in the tests.

Hand-written because no Python package with CRC64NVME can be installed here (see __init__.py).
test/moto-s3.test.ts checks it, through moto, against the AWS SDK's own CRC64NVME.

A byte-at-a-time loop in Python runs at a few MB/s, and moto checksums every multipart upload's
whole object on completion, so with numpy the input is cut into equal lanes whose CRCs are
computed side by side (one vector step per byte position) and then chained: the CRC of A||B is
the CRC of A advanced over len(B) zero bytes, XOR the CRC of B from a zero state. CRCs are linear,
so that is exact.
"""

_MASK = 0xFFFFFFFFFFFFFFFF
_POLY = 0x9A6C9329AC4BC9B5
_LANE_BYTES = 1024


def _table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def _update(state, data):
    table = _TABLE
    for byte in data:
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


try:
    import numpy as _np
except ImportError:  # numpy absent: correct, only slower
    _np = None

if _np is not None:
    _NP_TABLE = _np.array(_TABLE, dtype=_np.uint64)

    def _advance_tables():
        """_ADVANCE[k][v]: the state v << 8k advanced over _LANE_BYTES zero bytes."""
        states = (_np.arange(256, dtype=_np.uint64)[None, :] << (_np.arange(8, dtype=_np.uint64)[:, None] * _np.uint64(8))).ravel()
        for _ in range(_LANE_BYTES):
            states = _NP_TABLE[states & _np.uint64(0xFF)] ^ (states >> _np.uint64(8))
        return [[int(value) for value in states[k * 256:(k + 1) * 256]] for k in range(8)]

    _ADVANCE = _advance_tables()


def _update_lanes(state, data):
    lanes = len(data) // _LANE_BYTES
    columns = _np.frombuffer(data, dtype=_np.uint8, count=lanes * _LANE_BYTES).reshape(lanes, _LANE_BYTES)
    crcs = _np.zeros(lanes, dtype=_np.uint64)
    crcs[0] = state
    low_byte, eight = _np.uint64(0xFF), _np.uint64(8)
    for position in range(_LANE_BYTES):
        crcs = _NP_TABLE[(crcs ^ columns[:, position]) & low_byte] ^ (crcs >> eight)
    advance = _ADVANCE
    chained = 0
    for crc in crcs.tolist():
        shifted = 0
        for k in range(8):
            shifted ^= advance[k][(chained >> (8 * k)) & 0xFF]
        chained = shifted ^ crc
    return _update(chained, memoryview(data)[lanes * _LANE_BYTES:])


def crc64nvme(input, previous_crc64nvme=0):
    data = bytes(input) if not isinstance(input, (bytes, bytearray)) else input
    state = ~previous_crc64nvme & _MASK
    if _np is not None and len(data) >= 2 * _LANE_BYTES:
        state = _update_lanes(state, data)
    else:
        state = _update(state, data)
    return ~state & _MASK
