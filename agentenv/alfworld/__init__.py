"""ALFWorld as a Gymnasium text environment (``ALFWorld-v0``), with an offline game generator.

Importing this package is cheap; the engine (textworld, alfworld) is imported by
:mod:`agentenv.alfworld.env`, which ``gym.make("ALFWorld-v0")`` loads.
"""

from agentenv.alfworld.tasks import SPLITS, TASK_TYPES

__all__ = ["SPLITS", "TASK_TYPES"]
