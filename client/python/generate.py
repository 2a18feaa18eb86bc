"""Generates the gRPC stubs of sentio_client from the repository's proto/ with grpcio-tools.

    python client/python/generate.py [--proto DIR]

Every proto/sentio/v1/*.proto becomes sentio_client/v1/<name>_pb2.py, <name>_pb2.pyi and
<name>_pb2_grpc.py. grpcio-tools writes absolute imports (`from sentio.v1 import
emotion_pb2`) that only resolve with the output directory on sys.path; they are rewritten
to relative ones (`from . import emotion_pb2`) so the stubs live inside the package. The
package build (setup.py) runs this, so an install always matches the proto it was built from.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
PROTO_PACKAGE = ("sentio", "v1")
OUT_DIR = os.path.join(HERE, "sentio_client", "v1")

_ABSOLUTE = re.compile(r"^from sentio\.v1 import (\w+)", re.M)
_LEFTOVER = re.compile(r"^\s*(from|import)\s+sentio\b", re.M)


def generated_files(out_dir: str = OUT_DIR) -> list[str]:
    return sorted(glob.glob(os.path.join(out_dir, "*_pb2*.py*")))


def generate(proto_root: str = PROTO_ROOT, out_dir: str = OUT_DIR) -> list[str]:
    """Regenerates the stubs in out_dir; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(glob.glob(os.path.join(proto_root, *PROTO_PACKAGE, "*.proto")))
    if not protos:
        raise FileNotFoundError(f"no .proto files in {os.path.join(proto_root, *PROTO_PACKAGE)}")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(protos)}")
        os.makedirs(out_dir, exist_ok=True)
        for stale in generated_files(out_dir):
            os.remove(stale)
        written = []
        for src in sorted(glob.glob(os.path.join(tmp, *PROTO_PACKAGE, "*"))):
            with open(src, encoding="utf-8") as f:
                text = _ABSOLUTE.sub(r"from . import \1", f.read())
            if _LEFTOVER.search(text):
                raise RuntimeError(f"{os.path.basename(src)}: an absolute sentio import is left")
            dest = os.path.join(out_dir, os.path.basename(src))
            with open(dest, "w", encoding="utf-8") as f:
                f.write(text)
            written.append(dest)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto", default=PROTO_ROOT, help="the proto/ root (default: %(default)s)")
    parser.add_argument("--out", default=OUT_DIR, help="output package (default: %(default)s)")
    args = parser.parse_args()
    files = generate(args.proto, args.out)
    print(f"generated {len(files)} files in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
