"""The neoactions core: domain, matching, scheduling, persistence, API and serve."""
