"""The TCG plugin that counts retired guest instructions under qemu-system-arm (see insncount.c)."""
from .build import PluginBuildError, ensure_plugin, plugin_source

__all__ = ["PluginBuildError", "ensure_plugin", "plugin_source"]
