"""A checkpoint of tg::nn read by Python with only json and NumPy, and one written by them read back.

    checkpoint_numpy_test.py <nn_checkpoint_interop executable> <scratch dir>

1. The C++ program trains two small models (float32 with Adam, float64 with SGD and momentum) and
   saves them with save_checkpoint, listing every tensor's values in expected.txt.
2. This script parses each file by the safetensors layout (8-byte little-endian header length,
   JSON header, raw little-endian data) and compares names, dtypes, shapes, values (bit for bit)
   and metadata with expected.txt.
3. It writes from_numpy.safetensors itself (other values, its own key order, no header padding)
   and the C++ program loads it with load_checkpoint and compares.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    end_max = 0
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        assert end - begin == count * dtype.itemsize, f"{name}: offsets {begin}..{end} for {shape} {info['dtype']}"
        tensors[name] = (info["dtype"], shape, np.frombuffer(data[begin:end], dtype=dtype).reshape(shape))
        end_max = max(end_max, end)
    assert end_max == len(data), f"{path}: data section of {len(data)} bytes, tensors end at {end_max}"
    return tensors, meta


def parse_expected(path):
    tensors, meta = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            fields = line.split("\t")
            if fields[0] == "#meta":
                meta.setdefault(fields[1], {})[fields[2]] = fields[3]
                continue
            file, name, dtype, dims, values = fields
            shape = tuple(int(d) for d in dims.split(",") if d)
            arr = np.array([float(v) for v in values.split()], dtype=DTYPES[dtype]).reshape(shape)
            tensors.setdefault(file, {})[name] = (dtype, shape, arr)
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        b = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": {"<f4": "F32", "<f8": "F64"}[arr.dtype.str], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def main():
    exe, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([exe, "write", work], check=True)

    expected, expected_meta = parse_expected(os.path.join(work, "expected.txt"))
    failures = []
    checked = 0
    for file, want in expected.items():
        got, meta = read_safetensors(os.path.join(work, file))
        if set(got) != set(want):
            failures.append(f"{file}: names {sorted(got)} != {sorted(want)}")
        for name, (dtype, shape, arr) in want.items():
            if name not in got:
                continue
            gdtype, gshape, garr = got[name]
            if gdtype != dtype or gshape != shape:
                failures.append(f"{file}: {name} is {gdtype} {gshape}, expected {dtype} {shape}")
            elif garr.tobytes() != arr.tobytes():
                failures.append(f"{file}: {name} values differ: {garr.ravel()[:4]} vs {arr.ravel()[:4]}")
            checked += 1
        for key, value in expected_meta.get(file, {}).items():
            if meta.get(key) != value:
                failures.append(f"{file}: metadata {key} = {meta.get(key)!r}, expected {value!r}")
        if meta.get("format") != "tapegrad checkpoint 1":
            failures.append(f"{file}: metadata format = {meta.get('format')!r}")
    if checked < 16:
        failures.append(f"only {checked} tensors compared")

    # The other way: NumPy writes a checkpoint of the float32 model, C++ loads it.
    params = {name: arr for name, (_, _, arr) in expected["f32.safetensors"].items() if not name.startswith("optimizer.")}
    new = {name: (arr * np.float32(0.5) + np.float32(0.25)).astype("<f4") for name, arr in reversed(list(params.items()))}
    write_safetensors(os.path.join(work, "from_numpy.safetensors"), new, {"source": "numpy"})
    with open(os.path.join(work, "from_numpy.txt"), "w", encoding="utf-8") as f:
        for name, arr in new.items():
            f.write(name + "\t" + " ".join(repr(float(v)) for v in arr.ravel()) + "\n")
    back = subprocess.run([exe, "check", work])
    if back.returncode != 0:
        failures.append("the C++ side did not load the NumPy-written checkpoint correctly")

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"ok: {checked} tensors read with json + NumPy match; the NumPy-written checkpoint loads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
