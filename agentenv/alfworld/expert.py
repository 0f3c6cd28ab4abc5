"""ALFWorld's handcoded expert, fixed for the 0.4.2 grammar and made reproducible.

We drive alfworld's own ``HandCodedTWAgent`` policies (the heuristic expert that
ALFWorld used to label its games as solvable and to produce DAgger targets), the
same way its ``AlfredExpert`` wrapper does, with three differences:

* **The ``move``/``put`` fix.** The policies update their inventory only after a
  command starting with ``put``, but the grammar shipped with alfworld 0.4.2 says
  ``move X to Y``. Unfixed, the expert never notices it has put an object down: it
  wins only ~60% of pick-two tasks and takes ~96 steps. We hand the policy ``put X to Y``
  as the last command, which is all its state tracking looks at.
* **Its own random generator.** The policies break ties with the global ``random``
  module; we swap in a per-episode ``random.Random`` while they run, so a suggestion
  depends only on the game and the commands played (not on unrelated code using
  ``random``).
* **It never raises.** When the heuristics give up (timeout, no plan, a state they
  do not expect) the suggestion is ``None`` for the rest of the episode.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import alfworld.gen.constants as alfred_constants
from alfworld.agents.expert import HandCodedTWAgent
from alfworld.agents.expert import handcoded_expert as _policies_module

__all__ = ["HandcodedExpert"]

logger = logging.getLogger(__name__)

#: Step budget of the heuristics before they time out (alfworld's AlfredExpert uses 200).
EXPERT_MAX_STEPS = 200


@contextmanager
def _policy_random(rng: random.Random) -> Iterator[None]:
    # The policies call ``random.choice`` on the module they import; processes run
    # one env call at a time, so swapping the module attribute is safe here.
    saved = _policies_module.random
    _policies_module.random = rng
    try:
        yield
    finally:
        _policies_module.random = saved


def _as_put(command: str) -> str:
    return "put " + command[len("move ") :] if command.startswith("move ") else command


class HandcodedExpert:
    """Next-command suggestions for one episode of one game.

    Args:
        task_type: one of the six ALFWorld task types.
        pddl_params: the game's ``pddl_params`` (``object_target``, ``parent_target``, ...).
        seed: seed of the tie-breaking random generator.
    """

    def __init__(self, task_type: str, pddl_params: Mapping[str, Any], seed: int):
        params = {**pddl_params, "task_type": task_type}
        # Same normalisation as HandCodedAgent.reset, which reads these from traj_data.json.
        params = {k: v.lower() if v in alfred_constants.OBJECTS else v for k, v in params.items()}
        self._agent = HandCodedTWAgent(max_steps=EXPERT_MAX_STEPS)
        self._agent.task_params = params
        self._policy = self._agent.get_task_policy(params)(params, max_steps=EXPERT_MAX_STEPS)
        self._rng = random.Random(seed)
        self.failed = False

    def start(self, state: Mapping[str, Any]) -> str:
        """Observe the first game state; the expert always opens with ``look``."""
        self._policy.observe(state["feedback"])
        return "look"

    def next_action(self, state: Mapping[str, Any], last_command: str) -> str | None:
        """The suggested command after ``last_command`` led to ``state``, or ``None`` if it gave up."""
        if self.failed:
            return None
        admissible = state["admissible_commands"]
        try:
            with _policy_random(self._rng):
                action = self._policy.act(state, _as_put(last_command))
        except Exception as error:  # a third-party heuristic: any failure means "no suggestion"
            logger.debug("handcoded expert gave up: %r", error)
            self.failed = True
            return None
        # Mirrors HandCodedAgent.act: break loops with a random admissible command.
        if action == last_command or (last_command == "look" and action not in admissible):
            action = self._rng.choice(admissible)
        # Mirrors AlfredExpert: an inadmissible suggestion becomes "look".
        return action if action in admissible else "look"
