"""Base model for every boundary object: unknown keys are an error, not silently dropped."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that forbids extra fields."""

    model_config = ConfigDict(extra="forbid")
