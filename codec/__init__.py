"""vlae-codec: lossless and lossy image compression with a VLAE and bits-back ANS coding."""

from .api import compress, compress_file, decode, decompress, decompress_file, encode
from .errors import CodecError, FormatError, InputError, ModelMismatch

__all__ = ["compress", "decompress", "encode", "decode", "compress_file", "decompress_file",
           "CodecError", "FormatError", "InputError", "ModelMismatch"]
