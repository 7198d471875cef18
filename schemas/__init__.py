"""Pydantic contracts shared by every stage: examples, task specs, trials, configs, manifests."""

from schemas.config import GenerateConfig, InputMapping, SamplingConfig
from schemas.example import Example
from schemas.manifest import DatasetManifest, SplitInfo
from schemas.task import TaskSpec, load_task
from schemas.teacher_output import TeacherOutput, parse_teacher_output
from schemas.trial import Trial, TrialStatus

__all__ = [
    "DatasetManifest",
    "Example",
    "GenerateConfig",
    "InputMapping",
    "SamplingConfig",
    "SplitInfo",
    "TaskSpec",
    "TeacherOutput",
    "Trial",
    "TrialStatus",
    "load_task",
    "parse_teacher_output",
]
