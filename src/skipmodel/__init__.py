"""skipmodel: how likely is a listener to skip this track?"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skipmodel")  # one place for it: pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
