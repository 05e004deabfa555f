#!/usr/bin/env python3
"""tapegrad checkpoints are readable from Python with only json and NumPy, and the other way round.

usage: safetensors_numpy_test.py <safetensors_interop binary> <scratch directory>

1. The C++ tool saves a checkpoint with tg::io::save_safetensors and writes the values as text;
   read_safetensors() below (json + numpy only) reads the checkpoint, and every tensor must equal
   the text's values bit for bit (shape, dtype, -0.0, infinities and denormals included).
2. write_safetensors() below (json + numpy only) writes a checkpoint the way another tool would
   (no padding, keys in another order, BOOL); the C++ tool loads it with tg::io::load_safetensors
   and compares with the values as text.
3. The same file with one data byte changed must make the C++ check fail (the check can fail).
"""
import json
import os
import subprocess
import sys

import numpy as np

DTYPES = {"BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
          "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8"}


def read_safetensors(path):
    """The format read with json and numpy: returns ({name: array}, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int(np.frombuffer(raw[:8], dtype="<u8")[0])
    assert 8 + n <= len(raw), "header length exceeds the file"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, stop = info["data_offsets"]
        assert begin == end, f"{name}: offsets not contiguous"
        dtype = np.dtype(DTYPES[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert stop - begin == count * dtype.itemsize, f"{name}: shape and offsets disagree"
        tensors[name] = np.frombuffer(data[begin:stop], dtype=dtype).reshape(info["shape"])
        end = stop
    assert end == len(data), "trailing bytes"
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    """The format written with json and numpy, tensors in the given order, no header padding."""
    header, chunks, offset = {}, [], 0
    for name, a in tensors.items():
        code = next(k for k, v in DTYPES.items() if np.dtype(v) == a.dtype)
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"data_offsets": [offset, offset + len(b)], "shape": list(a.shape), "dtype": code}
        chunks.append(b)
        offset += len(b)
    header = dict(reversed(list(header.items())))  # keys in another order than the data
    header["__metadata__"] = metadata
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(np.array([len(text)], dtype="<u8").tobytes())
        f.write(text)
        for c in chunks:
            f.write(c)


def read_expected(path):
    tensors, metadata = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            fields = line.split("\t")
            if fields[0] == "#meta":
                metadata[fields[1]] = fields[2]
                continue
            name, dtype, shape, values = fields
            shape = [int(d) for d in shape.split(",")] if shape else []
            parse = float if dtype.startswith("F") else int
            vals = [parse(v) for v in values.split()]
            tensors[name] = np.array(vals, dtype=np.dtype(DTYPES[dtype])).reshape(shape)
    return tensors, metadata


def write_expected(path, tensors, metadata):
    with open(path, "w", encoding="utf-8") as f:
        for name, a in tensors.items():
            code = next(k for k, v in DTYPES.items() if np.dtype(v) == a.dtype)
            values = " ".join(repr(float(x)) if a.dtype.kind == "f" else str(int(x)) for x in a.ravel())
            f.write(f"{name}\t{code}\t{','.join(str(d) for d in a.shape)}\t{values}\n")
        for k, v in metadata.items():
            f.write(f"#meta\t{k}\t{v}\n")


def main():
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    failures = 0

    # 1. C++ writes, Python reads.
    ckpt, expected = os.path.join(work, "cpp.safetensors"), os.path.join(work, "cpp.txt")
    subprocess.run([tool, "write", ckpt, expected], check=True)
    got, got_meta = read_safetensors(ckpt)
    want, want_meta = read_expected(expected)
    if sorted(got) != sorted(want):
        print(f"names differ: {sorted(got)} vs {sorted(want)}")
        failures += 1
    for name, w in want.items():
        g = got.get(name)
        if g is None or g.dtype != w.dtype or g.shape != w.shape or g.tobytes() != w.tobytes():
            print(f"MISMATCH {name}: got {g!r}, want {w!r}")
            failures += 1
    if got_meta != want_meta:
        print(f"metadata differs: {got_meta} vs {want_meta}")
        failures += 1
    print(f"C++ -> Python: {len(want)} tensors compared, {sum(w.size for w in want.values())} values")

    # 2. Python writes, C++ reads.
    rng = np.random.default_rng(5)
    tensors = {
        "encoder.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "encoder.bias": np.array([0.0, -0.0, np.inf], dtype=np.float32),
        "scale": np.array(rng.standard_normal(), dtype=np.float64),  # a scalar, shape ()
        "counts": rng.integers(-2**62, 2**62, size=(2, 2, 2), dtype=np.int64),
        "pixels": rng.integers(0, 256, size=(5,), dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "none": np.zeros((3, 0), dtype=np.float64),
    }
    metadata = {"written_by": "numpy", "epoch": "7"}
    py_ckpt, py_expected = os.path.join(work, "py.safetensors"), os.path.join(work, "py.txt")
    write_safetensors(py_ckpt, tensors, metadata)
    write_expected(py_expected, tensors, metadata)
    r = subprocess.run([tool, "check", py_ckpt, py_expected])
    if r.returncode != 0:
        print("C++ could not read the checkpoint Python wrote")
        failures += 1

    # 3. One changed data byte must be caught by the C++ comparison.
    with open(py_ckpt, "rb") as f:
        raw = bytearray(f.read())
    first_data_byte = 8 + int(np.frombuffer(bytes(raw[:8]), dtype="<u8")[0])
    raw[first_data_byte] ^= 0x01  # the lowest mantissa bit of encoder.weight[0, 0]
    bad = os.path.join(work, "py-changed.safetensors")
    with open(bad, "wb") as f:
        f.write(raw)
    r = subprocess.run([tool, "check", bad, py_expected], capture_output=True, text=True)
    if r.returncode == 0 or "encoder.weight: values differ" not in r.stderr:
        print(f"a changed value went unnoticed: {r.returncode} {r.stderr}")
        failures += 1

    print("FAILED" if failures else "PASSED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
