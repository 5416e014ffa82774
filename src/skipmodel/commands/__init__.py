"""One module per CLI verb: ``add_arguments(parser)`` and ``run(args) -> int``."""

from pathlib import Path


def store_location(text: str) -> Path:
    """``--store``'s type: a folder, a ``file://`` URI or a URI pyarrow.fs opens (``s3://``...)."""
    from skipmodel.store.location import store_path

    return store_path(text)
