"""Build hooks of sentio-ser-client (metadata lives in pyproject.toml).

The gRPC stubs are generated from the repository's proto/ while the package builds
(generate.py), and the runtime requirements follow the grpcio-tools that generated them:
its stubs refuse to import under an older grpcio or protobuf.
"""
import os
import sys
from importlib.metadata import requires, version

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402


def runtime_requirements():
    tools = version("grpcio-tools")
    protobuf = [r for r in requires("grpcio-tools") or [] if r.replace(" ", "").startswith("protobuf")]
    return [f"grpcio>={tools}", *protobuf]


class BuildPy(build_py):
    def run(self):
        if os.path.isdir(generate.PROTO_ROOT):
            generate.generate()
        elif not generate.generated_files():
            raise SystemExit(f"sentio-ser-client: neither {generate.PROTO_ROOT} nor generated stubs "
                             "found; build it from a checkout of the Sentio repository")
        # A build/ left by an earlier in-tree build must not keep stubs the proto dropped.
        for stale in generate.generated_files(os.path.join(self.build_lib, "sentio_client", "v1")):
            os.remove(stale)
        super().run()


setup(install_requires=runtime_requirements(), cmdclass={"build_py": BuildPy})
