"""Configuration: yacs defaults, YAML/CLI merging, and validation before any work starts."""
from videovit.config.cli import add_config_arguments, config_from_args, config_sources, save_config
from videovit.config.defaults import get_defaults
from videovit.config.loading import load_config
from videovit.config.validation import validate_config

__all__ = ["add_config_arguments", "config_from_args", "config_sources", "get_defaults",
           "load_config", "save_config", "validate_config"]
