"""The typed Python client and the neoactions CLI."""
