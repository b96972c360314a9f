"""Sans-I/O wire protocols: bytes in, typed frames out, and back. No I/O, threads or clocks here."""


class ProtocolError(ValueError):
    """A frame or field that cannot be encoded or is not valid for the protocol."""
