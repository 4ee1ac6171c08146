"""Plugins: manifests, registry, install lifecycle (the built-in handler types ship as plugins)."""
