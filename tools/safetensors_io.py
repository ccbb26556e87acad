"""Minimal safetensors writer/reader in plain Python + torch (no `safetensors` package needed).

Format: u64 little-endian header length N, then N bytes of JSON
{"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
padded with spaces so that N is a multiple of 8, then the raw little-endian tensor data; offsets are relative
to the start of the data. Tensors are laid out in name order, each contiguous and without gaps.
"""

import json
import os
import struct

import torch

_DTYPES = {
    torch.float32: ("F32", 4),
    torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2),
    torch.int32: ("I32", 4),
    torch.int64: ("I64", 8),
}
_BY_NAME = {v[0]: (k, v[1]) for k, v in _DTYPES.items()}


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret as int16
        t = t.view(torch.int16)
    b = t.numpy().tobytes()
    if struct.pack("=I", 1) != struct.pack("<I", 1):
        raise RuntimeError("big-endian host not supported")
    return b


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} to path (atomically: temp file + rename)."""
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _DTYPES:
            raise ValueError("%s: unsupported dtype %s" % (name, t.dtype))
        b = _tensor_bytes(t)
        header[name] = {"dtype": _DTYPES[t.dtype][0], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_safetensors(path):
    """Reads a safetensors file into {name: tensor} (and checks that the layout is well formed)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, size = _BY_NAME[info["dtype"]]
        b, e = info["data_offsets"]
        numel = 1
        for s in info["shape"]:
            numel *= s
        if e - b != numel * size or base + e > len(data):
            raise ValueError("%s: %s: bad data_offsets" % (path, name))
        raw = bytearray(data[base + b : base + e])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if numel else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if numel else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out
