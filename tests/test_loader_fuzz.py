"""Loader robustness: mutated, truncated and extended images give only LoadError.

Two kinds of cases, all seeded:

* raw mutations (bit flips, byte changes, truncation, extension, inserted and deleted bytes): the
  CRCs catch them, so every case must raise LoadError;
* mutations with *repaired* CRCs (section CRCs, table CRC and trailer recomputed): these reach
  the field checks. Each must either raise LoadError or load a chip that runs (any error on the
  run is an EmulatorError). No case may hit the loader's safety net ("unexpected ...").

CI runs about 2000 cases; the ``slow`` test runs 12000.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from test_image import GOLDEN_PROFILE, compiled, two_core_graph

import emulator
from emulator import format as F
from emulator.errors import EmulatorError, LoadError
from nmc.backend.writer import write_image


@pytest.fixture(scope="module")
def images():
    from test_image_truenorth import compiled_tn

    small = write_image(two_core_graph(), GOLDEN_PROFILE)
    res = compiled(3)
    assert res is not None
    return [small, res[1], compiled_tn(4)[1]]


def repair_crcs(data: bytes) -> bytes:
    """Recompute every CRC of an image whose section table is intact enough to walk."""
    d = bytearray(data)
    n = struct.unpack_from("<I", d, 12)[0]
    if n > 4096 or len(d) < 36 + 32 * n:
        return bytes(d)
    for i in range(n):
        off0 = 32 + 32 * i
        off, length = struct.unpack_from("<QQ", d, off0 + 8)
        if off + length <= len(d) - 4:
            struct.pack_into("<I", d, off0 + 24, F.crc32(bytes(d[off:off + length])))
    head = bytes(d[:24]) + b"\0\0\0\0" + bytes(d[28:32])
    struct.pack_into("<I", d, 24, F.crc32(head + bytes(d[32:32 + 32 * n])))
    struct.pack_into("<I", d, len(d) - 4, F.crc32(bytes(d[:-4])))
    return bytes(d)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    d = bytearray(data)
    op = int(rng.integers(7))
    if op == 0:  # bit flips
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(d)))
            d[i] ^= 1 << int(rng.integers(8))
    elif op == 1:  # byte changes
        for _ in range(int(rng.integers(1, 4))):
            d[int(rng.integers(len(d)))] = int(rng.integers(256))
    elif op == 2:  # truncation
        d = d[:int(rng.integers(len(d)))]
    elif op == 3:  # extension
        d += bytes(rng.integers(0, 256, int(rng.integers(1, 64))).astype(np.uint8))
    elif op == 4:  # inserted bytes
        i = int(rng.integers(len(d)))
        d[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 9))).astype(np.uint8))
    elif op == 5:  # deleted bytes
        i = int(rng.integers(len(d)))
        del d[i:i + int(rng.integers(1, 9))]
    else:  # a 4-byte field set to an extreme value
        i = int(rng.integers(0, max(1, len(d) - 4)))
        d[i:i + 4] = struct.pack("<I", int(rng.choice([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])))
    return bytes(d)


def check_case(base: bytes, rng: np.random.Generator, repaired: bool, stats: dict) -> None:
    data = mutate(base, rng)
    if repaired:
        try:
            data = repair_crcs(data)
        except struct.error:
            pass
    if data == base:
        stats["unchanged"] += 1
        return
    try:
        chip = emulator.load(data)
    except LoadError as e:
        assert not str(e).split(": ", 1)[-1].startswith("unexpected"), str(e)
        assert e.section is not None
        stats["refused"] += 1
        return
    assert repaired, "a raw mutation passed every CRC"
    stats["loaded"] += 1
    try:
        chip.run(ticks=3, batch=1)
    except EmulatorError:
        pass


def run_cases(images, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    stats = {"refused": 0, "loaded": 0, "unchanged": 0}
    for k in range(n):
        base = images[k % len(images)]
        check_case(base, rng, repaired=bool(k % 2), stats=stats)
    return stats


def test_fuzz_2000_cases(images):
    stats = run_cases(images, 2000, seed=0)
    assert stats["refused"] > 1500
    assert stats["refused"] + stats["loaded"] + stats["unchanged"] == 2000


@pytest.mark.slow
@pytest.mark.usefixtures("_only_when_asked")
def test_fuzz_12000_cases(images):
    stats = run_cases(images, 12000, seed=1)
    assert stats["refused"] > 9000


# ------------------------------------------------------------------------------------------
# Targeted corruptions: the message names the section, the offset and the field
# ------------------------------------------------------------------------------------------
def _sections(data: bytes) -> list[tuple[int, int, int, int]]:
    n = struct.unpack_from("<I", data, 12)[0]
    out = []
    for i in range(n):
        kind, index = struct.unpack_from("<HH", data, 32 + 32 * i)
        off, length = struct.unpack_from("<QQ", data, 32 + 32 * i + 8)
        out.append((kind, index, off, length))
    return out


def test_truncated_and_extended(images):
    d = images[0]
    with pytest.raises(LoadError, match=rf"^section header at byte offset 16: header says the file "
                       rf"has {len(d)} bytes, it has {len(d) - 1} \(truncated or extended\)$"):
        emulator.load(d[:-1])
    with pytest.raises(LoadError, match=r"^section header at byte offset 0: image is 10 bytes; "
                       r"the smallest image has 36$"):
        emulator.load(d[:10])
    with pytest.raises(LoadError, match=r"\(truncated or extended\)$"):
        emulator.load(d + b"\0")


def test_version_and_magic(images):
    d = bytearray(images[0])
    d[8] = 2
    with pytest.raises(LoadError, match=r"^section header at byte offset 8: format version 2\.0 is "
                       r"not supported \(this emulator reads 1\.0 \.\. 1\.0\); use a matching nmc "
                       r"version$"):
        emulator.load(bytes(d))


def test_crc_mismatch_names_the_core_section(images):
    d = bytearray(images[0])
    kind, index, off, length = [s for s in _sections(images[0]) if s[0] == F.Kind.CORE][1]
    d[off + length - 1] ^= 0x01
    with pytest.raises(LoadError, match=rf"^section CORE 1 at byte offset {off}: CRC mismatch "
                       r"\(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\): the section's bytes are "
                       r"corrupted$"):
        emulator.load(bytes(d))


def test_field_range_error_names_field_and_offset(images):
    # core 0 of the small image: header (44 bytes) + 1 slice (12), then CX (3 x 31 bits = 12 bytes),
    # VTH (2 x 17 bits = 5 bytes), ACC (1 byte), FMT (1 x 16 bits), then NEURON records of
    # cx (2) + vth (1) + bias (13) + bias_exp (3) + n_routes (2) = 21 bits.
    base = images[0]
    kind, index, off, length = [s for s in _sections(base) if s[0] == F.Kind.CORE][0]
    neuron_at = off + F.LOIHI_CORE_HEADER.size + 12 + 12 + 5 + 1 + 2
    d = bytearray(base)
    d[neuron_at] |= 0x03  # compartment 0: cx = 3, but the core has 3 configs (0..2)
    with pytest.raises(LoadError, match=rf"^section CORE 0 at byte offset {neuron_at}: "
                       r"LOIHI_NEURON.cx\[0\] = 3 is out of range \(< n_cx 3\)$"):
        emulator.load(repair_crcs(bytes(d)))


def test_route_to_missing_core(images):
    base = images[0]
    c0 = [s for s in _sections(base) if s[0] == F.Kind.CORE][0]
    chip = emulator.load(base)
    # LOIHI_ROUTE of core 0 is the last table of its section: 6 entries of chip 0 bits, x 2,
    # y 2, axon 8 bits = 12 bits each (9 bytes); set entry 0's x to 3 (no core at (3, 1))
    route_at = c0[2] + c0[3] - 9
    d = bytearray(base)
    d[route_at] |= 0x03
    assert chip.cores[0].route_pos[0].tolist() == [0, 1, 1, 0]
    with pytest.raises(LoadError, match=rf"^section CORE 0 at byte offset {route_at}: LOIHI_ROUTE\[0\] "
                       r"goes to chip 0 \(3, 1\), where no core is placed$"):
        emulator.load(repair_crcs(bytes(d)))
