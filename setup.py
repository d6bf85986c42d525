"""Install videovit: `pip install -e .` (the Makefile does this inside .venv)."""
from setuptools import find_packages, setup

setup(
    name="videovit",
    version="0.1.0",
    description="RegionViT and VOLO video transformers for action recognition (K400, SSV2)",
    packages=find_packages(include=["videovit", "videovit.*"]),
    python_requires=">=3.10",
    # What the package imports at run time (README, "Dependency notes").
    install_requires=[
        "torch>=2.4,<2.15",
        "torchvision>=0.19,<0.30",
        "timm>=1.0.9,<1.1",
        "fvcore>=0.1.5.post20221221",
        "yacs>=0.1.8",
        "pyyaml>=6",
        "pillow>=10",
        "av>=12,<20",
        "torchcodec>=0.17,<0.18",  # needs the system FFmpeg libraries; without them "auto" uses PyAV
        "safetensors>=0.4",
        "numpy>=1.24",
        "tensorboard>=2.14",
        "matplotlib>=3.7",
    ],
    extras_require={
        "decord": ["decord2>=3.4"],  # the maintained decord fork (imports as `decord`)
        "bench": ["pytorchvideo==0.1.5"],  # only tools/benchmark_data.py --pytorchvideo compares with it
        "test": ["pytest>=8", "pytest-xdist>=3.5", "decord2>=3.4"],
    },
)
