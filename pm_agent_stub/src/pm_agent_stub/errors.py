"""`BoardError`: a refused call, raised by the board and answered as the protocol's `ErrorResult`."""

from __future__ import annotations

from pm_protocol.errors import ERROR_CODES, ErrorCode

__all__ = ["ERROR_CODES", "BoardError", "ErrorCode"]


class BoardError(Exception):
    """A refused call: carries the wire code and a message that says what to send instead.

    The tool boundary (`tools.py`) turns it into `pm_protocol.ErrorResult` with `is_error` set.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
