import glob
import os

from setuptools import find_packages, setup
import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension, include_paths

here = os.path.dirname(os.path.abspath(__file__))
sources = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
# torch.profiler's device activities come through Kineto's plugin interface (csrc/profiler/).
kineto = [os.path.join(p, "kineto") for p in include_paths() if os.path.isdir(os.path.join(p, "kineto"))]
kineto_macros = [("KINETO_PLUGIN", "1")] if kineto and torch.profiler.kineto_available() else []

setup(
    name="torch_biren",
    version="0.1.0",
    description="PyTorch device backend for a simulated Biren BR166 GPU",
    packages=find_packages(include=["torch_biren", "torch_biren.*"]),
    package_data={"torch_biren": ["sim/chips/*.json", "projection/*.json", "projection/published/*.json", "data/*"]},
    # The Makefile builds the extension in place (incrementally) and installs the package metadata
    # separately with TORCH_BIREN_SKIP_EXT=1, so an install never compiles twice.
    ext_modules=[] if os.environ.get("TORCH_BIREN_SKIP_EXT") else [
        CppExtension(
            "torch_biren._C",
            sources,
            include_dirs=[os.path.join(here, "csrc"), *kineto],
            define_macros=kineto_macros,
            extra_compile_args=["-O2", "-std=c++20", "-Wno-unused-parameter"],
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    entry_points={"torch.backends": ["torch_biren = torch_biren:_autoload"]},
    python_requires=">=3.10",
)
