"""One exception type for every user-facing failure: the CLI prints its message as one line."""


class SkipmodelError(Exception):
    """A problem with the user's input or environment, with an actionable one-line message."""
