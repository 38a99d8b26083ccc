"""``na64`` subcommands: argument parsing and file I/O around the stage cores.

Each module here exposes ``register(subparsers)``; :mod:`recon.cli` lists them.
"""
