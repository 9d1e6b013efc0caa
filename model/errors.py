"""The model side's errors that a user can cause; the message says what to do."""


class ModelError(Exception):
    """A named model or data set is missing or malformed."""
