"""Shim for tools that look for setup.py: the package metadata is in pyproject.toml."""
from setuptools import setup

setup()
