"""Plugins inside the server: install, update and uninstall at runtime, on every process.

:mod:`.host` (``PluginHost``) verifies what a registry serves, stores it and registers its
handler types; :mod:`.port` is the store role it uses. Manifests, signatures, registries
and the author tools live in :mod:`neoactions.plugins`, which the CLI shares.
"""

from neoactions.server.pluginhost.port import PluginStore

__all__ = ["PluginStore"]
