"""One labelled input example."""

from typing import Literal

from pydantic import Field

from schemas.base import Strict


class Example(Strict):
    """A labelled example: stable id, named text fields, binary gold label, split name."""

    id: str = Field(min_length=1)
    fields: dict[str, str]
    label: Literal[0, 1]
    split: str = "train"
