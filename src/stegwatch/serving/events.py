"""What a scanner posts: production scan events and ground-truth feedback (validated with pydantic).

A bad body is refused whole (HTTP 422 naming the field and the reason), never
stored in part. ``request_id`` is the idempotency key: posting the same event
twice stores it once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

#: Clock skew tolerated on event timestamps (an event from the future beyond this is refused).
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: How old an event may be when it arrives (``[serve] max_event_age``); older ones are refused.
DEFAULT_MAX_EVENT_AGE = timedelta(days=7)
MAX_BATCH = 1000

RequestId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
ShortText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:+\-]+$")]


class ScanEvent(BaseModel):
    """One scan the production service made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    timestamp: AwareDatetime = Field(description="When the scan happened, with a time zone (ISO 8601).")
    model_version: ShortText
    # Numbers must be JSON numbers (strict): true, "123" or 3.0 for a count are refused, not coerced.
    latency_ms: float = Field(ge=0, le=3_600_000, allow_inf_nan=False, strict=True)
    score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False, strict=True, description="None when the scan failed.")
    verdict: Literal["stego", "clean", "error"]
    method: ShortText | None = Field(default=None, description="The method the detector named, for a stego verdict.")
    image_format: ShortText = Field(description="png, jpeg, gif, webp, bmp, ...")
    image_bytes: int = Field(ge=0, le=10**10, strict=True)
    width: int | None = Field(default=None, ge=1, le=10**6, strict=True)
    height: int | None = Field(default=None, ge=1, le=10**6, strict=True)
    error: str | None = Field(default=None, max_length=500)

    @field_validator("image_format")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("timestamp")
    @classmethod
    def _recent(cls, value: datetime, info: ValidationInfo) -> datetime:
        """Not beyond the clock skew in the future, nor older than the horizon (``max_age`` in the validation context)."""
        now = datetime.now(UTC)
        max_age = (info.context or {}).get("max_age", DEFAULT_MAX_EVENT_AGE)
        try:
            ahead = value - now
        except OverflowError:  # year 1 or 9999 with an offset falls outside what UTC can hold
            ahead = timedelta.max if value.year > now.year else timedelta.min
        if ahead > MAX_CLOCK_SKEW:
            raise ValueError(f"timestamp is more than {MAX_CLOCK_SKEW} in the future")
        if -ahead > max_age:
            raise ValueError(f"timestamp is more than {max_age} in the past (the server's max_event_age)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ScanEvent:
        if self.verdict == "error" and self.score is not None:
            raise ValueError("an error verdict has no score")
        if self.verdict != "error" and self.score is None:
            raise ValueError("a stego or clean verdict needs its score")
        if self.method is not None and self.verdict != "stego":
            raise ValueError("only a stego verdict names a method")
        return self


class EventBatch(BaseModel):
    """Several events in one request (stored in one transaction)."""

    model_config = ConfigDict(extra="forbid")

    events: list[ScanEvent] = Field(min_length=1, max_length=MAX_BATCH)


class Feedback(BaseModel):
    """A later ground-truth label for one scanned request, from a reviewer."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId
    label: Literal["clean", "stego"] = Field(description="confirmed clean or confirmed stego")
    reviewer: ShortText | None = None


__all__ = ["DEFAULT_MAX_EVENT_AGE", "MAX_BATCH", "EventBatch", "Feedback", "ScanEvent"]
