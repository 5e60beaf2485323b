"""`BoardError`: a refused call, raised by the board and answered as the protocol's error result."""

from __future__ import annotations

from pm_protocol.errors import ERROR_CODES, ErrorCode, ErrorResult

__all__ = ["ERROR_CODES", "BoardError", "ErrorCode"]


class BoardError(Exception):
    """A refused call: carries the wire code and a message that says what to send instead."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def to_json(self) -> dict[str, object]:
        return ErrorResult(error=self.code, message=self.message).model_dump(mode="json")
