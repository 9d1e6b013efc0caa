"""The codec's error types: every failure a user can cause is one of these, with a one-line message."""


class CodecError(Exception):
    """Base of all errors the codec reports to users."""


class InputError(CodecError):
    """An input image or array the codec cannot take."""


class FormatError(CodecError):
    """A .vlae file that is corrupt, truncated, of a newer version or beyond limits."""


class ModelMismatch(CodecError):
    """A .vlae file made with a model (or model version) that is not the one at hand."""
