"""The completeness marker's cost: hashing a checkpoint (xxh3-64, as marked) against saving it.

    python benchmarks/checkpoint_checksum.py              # 512 MiB of weights, best of 3
    python benchmarks/checkpoint_checksum.py --mib 128    # quick

A save here is what the Trainer does for the weights: `safetensors.torch.save_file` of a state
dict of float32 tensors, then fsync (the marker fsyncs every file before it vouches for it). The
digest is then taken the way `rl_math.train.checkpoints.mark_complete` takes it, right after the
save (the bytes are in the page cache), with zlib.crc32 beside it for comparison. Each number is
the best of `--repeats`; the machine is named in the footer. Cold reads (a checkpoint larger than
the page cache, as a 7B ZeRO-3 one of ~100 GB may be) cost the disk's read throughput instead:
`--cold` drops the page cache first (root only) to measure that case.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from rl_math.train.checkpoints import file_digest


def _best(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(16 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="size of the weights file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--cold", action="store_true", help="also hash after dropping the page cache (root)")
    args = parser.parse_args()

    torch.manual_seed(0)
    per_tensor = 16 << 20  # 16 MiB tensors, like a model's layers
    tensors = {f"layer.{i}.weight": torch.randn(per_tensor // 4) for i in range(max(1, args.mib // 16))}
    size = sum(t.numel() * 4 for t in tensors.values())
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "model.safetensors"

        def save():
            save_file(tensors, str(path))
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        save_s = _best(args.repeats, save)
        xxh_s = _best(args.repeats, lambda: file_digest(path))
        crc_s = _best(args.repeats, lambda: _crc32(path))
        cold_s = None
        if args.cold:
            def cold():
                _drop_page_cache()
                file_digest(path)
            cold_s = _best(args.repeats, cold)

    mb = size / 1e6
    print(f"{platform.node()} ({os.cpu_count()} CPU), {mb:.0f} MB of float32 weights, best of {args.repeats}")
    print(f"{'step':<42}{'seconds':>9}{'MB/s':>10}{'% of save':>11}")
    rows = [("save (safetensors + fsync)", save_s), ("xxh3-64 digest (page cache, marked)", xxh_s),
            ("zlib.crc32 (page cache, for comparison)", crc_s)]
    if cold_s is not None:
        rows.append(("xxh3-64 digest (cold, from disk)", cold_s))
    for name, seconds in rows:
        print(f"{name:<42}{seconds:>9.3f}{mb / seconds:>10.0f}{100 * seconds / save_s:>10.1f}%")


if __name__ == "__main__":
    main()
