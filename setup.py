"""Install videovit: `pip install -e .` (the Makefile does this inside .venv)."""
from setuptools import find_packages, setup

# ONNX export and its onnxruntime check (tools/export.py --onnx; see docs/deployment.md). About 35 MB
# of wheels next to PyTorch's gigabytes, so the test extra (what CI installs) includes it and CI runs
# the ONNX tests.
EXPORT_REQUIRES = ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"]

setup(
    name="videovit",
    version="0.1.0",
    description="RegionViT and VOLO video transformers for action recognition (K400, SSV2)",
    packages=find_packages(include=["videovit", "videovit.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4,<2.15",
        "torchvision>=0.19,<0.30",
        "timm>=1.0.9,<1.1",
        "fvcore>=0.1.5.post20221221",
        "yacs>=0.1.8",
        "av>=12,<20",
        "decord>=0.6.0",
        "pytorchvideo==0.1.5",
        "safetensors>=0.4",
        "numpy>=1.24",
        "tensorboard>=2.14",
        "matplotlib>=3.7",
    ],
    extras_require={
        "export": EXPORT_REQUIRES,
        "test": ["pytest>=8", "pytest-xdist>=3.5", *EXPORT_REQUIRES],
    },
)
