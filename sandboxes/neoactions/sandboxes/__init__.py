"""Runners: one per handler type, all behind one Execute contract."""
