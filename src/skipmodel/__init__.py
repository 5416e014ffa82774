"""skipmodel: how likely is a listener to skip this track?"""

__version__ = "0.1.0"
