"""The pure core of wasm-shim-fleet: naming, version policy, stack config, plan, diff and node scripts.

Nothing in this package imports pulumi: every function here turns data into data, so it can be
tested with tables and golden files and run by the `python -m components` commands without an engine.
"""
