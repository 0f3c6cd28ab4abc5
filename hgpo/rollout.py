"""Rollout collection: groups of episodes -> one row per env step.

One loop serves training (an LM policy with token ids and context keys) and
evaluation (an LM, the expert or a random policy): a *decider* maps the prompts
of the active envs to decisions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hgpo.config import GenerationConfig, TrainConfig
from hgpo.generation import GenerationBackend, Response, Sampling
from memory import Memory, chat_token_counter
from memory.parsing import HiperTurn, parse_action, parse_hiper_turn


def make_memory(cfg: TrainConfig, tokenizer=None) -> Memory:
    """The memory module a config asks for (it renders prompts and emits context keys).

    A token budget (``memory.max_prompt_tokens``) counts chat-template tokens of
    ``tokenizer``; without a tokenizer (expert/random policies) there is no budget.
    """
    if tokenizer is None or cfg.memory.max_prompt_tokens is None:
        return cfg.memory.model_copy(update={"max_prompt_tokens": None}).build()
    return cfg.memory.build(count_tokens=chat_token_counter(tokenizer))


@dataclass
class Decision:
    """What a policy chose in one env: the action sent, whether the response was
    well-formed, the tokens when an LM produced it, and for HiPER the parsed turn."""

    action: str
    valid: bool = True
    response: Response | None = None
    turn: HiperTurn | None = None

    @property
    def subgoal(self) -> str | None:
        return self.turn.subgoal if self.turn is not None and self.turn.subgoal else None


#: Maps (env indices, prompts, observations, infos of those envs) to one decision per env.
Decider = Callable[[Sequence[int], Sequence[str], Sequence[str], Sequence[dict]], list[Decision]]


@dataclass
class Rollout:
    """All env steps of one iteration, one row per step, rows trajectory-major.

    ``group``/``traj``/``step``/``reward``/``valid``/``keys`` feed
    :class:`hgpo.advantages.StepBatch`; token ids stay beside them.
    """

    group: np.ndarray  # int64 (N,)
    traj: np.ndarray  # int64 (N,)
    step: np.ndarray  # int64 (N,)
    reward: np.ndarray  # float32 (N,)
    valid: np.ndarray  # bool (N,)
    keys: np.ndarray  # uint64 (N, K+1)
    truncated: np.ndarray  # bool (N,): the step limit ended the episode at this step
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    sample_logprobs: list[list[float]]  # the generator's log-prob of each response token
    turns: list[HiperTurn | None]  # HiPER's parsed turn of each step (None for flat formats)
    # one entry per trajectory (= env slot)
    episode_return: np.ndarray  # float32 (E,)
    episode_length: np.ndarray  # int64 (E,)
    won: np.ndarray  # bool (E,)
    score: np.ndarray  # float32 (E,): WebShop's raw score, else won as 0/1
    task_type: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    worker_restarts: int = 0  # env workers that died and were restarted (their episode was cut)

    def __len__(self) -> int:
        return len(self.step)


def _info_at(infos: dict, i: int) -> dict:
    """The info dict of env i out of gymnasium's batched infos (keys with a ``_key`` mask)."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get("_" + key)
        if mask is None or mask[i]:
            out[key] = value[i]
    return out


def collect_rollouts(
    envs,
    memory: Memory,
    decide: Decider,
    *,
    seed: int,
    max_steps: int,
    tasks: Sequence | None = None,
) -> Rollout:
    """Run every env of a group vector env to the end of one episode.

    ``envs`` is an :func:`agentenv.vector.make_group_vector_env` env: env i belongs to
    group ``envs.group_ids[i]`` and members of a group start from the same task and seed.
    Finished members are parked by the vector env, so stepping continues until all end.
    """
    n = envs.num_envs
    options = {"tasks": list(tasks)} if tasks is not None else None
    t0 = time.perf_counter()
    obs, infos = envs.reset(seed=seed, options=options)
    env_time = time.perf_counter() - t0
    per_env = [_info_at(infos, i) for i in range(n)]
    memory.reset(n, [str(info.get("task", "")) for info in per_env])

    rows: dict[str, list] = {
        k: []
        for k in ("traj", "step", "reward", "valid", "keys", "truncated", "prompt", "response", "logprobs", "turn")
    }
    done = np.zeros(n, dtype=bool)
    ep_return = np.zeros(n, dtype=np.float32)
    ep_length = np.zeros(n, dtype=np.int64)
    won = np.zeros(n, dtype=bool)
    score = np.zeros(n, dtype=np.float32)
    task_type = [str(info.get("task_type", "")) for info in per_env]
    policy_time = 0.0
    restarts = 0

    for t in range(max_steps):
        active = np.flatnonzero(~done)
        if len(active) == 0:
            break
        prompts = [memory.render(i, obs[i], list(per_env[i].get("admissible_actions", []))) for i in active]
        keys = [memory.context_keys(i, obs[i]) for i in active]
        t0 = time.perf_counter()
        decisions = decide(active, prompts, [obs[i] for i in active], [per_env[i] for i in active])
        policy_time += time.perf_counter() - t0

        actions = [""] * n
        for i, d in zip(active, decisions, strict=True):
            actions[i] = d.action
        t0 = time.perf_counter()
        next_obs, reward, terminated, truncated, infos = envs.step(np.array(actions, dtype=object))
        env_time += time.perf_counter() - t0
        next_info = [_info_at(infos, i) for i in range(n)]

        for i, d, k in zip(active, decisions, keys, strict=True):
            rows["traj"].append(i)
            rows["step"].append(t)
            rows["reward"].append(float(reward[i]))
            rows["valid"].append(d.valid)
            rows["keys"].append(k)
            rows["truncated"].append(bool(truncated[i]) and not terminated[i])
            rows["prompt"].append(d.response.prompt_ids if d.response else [])
            rows["response"].append(d.response.response_ids if d.response else [])
            rows["logprobs"].append(d.response.logprobs if d.response else [])
            rows["turn"].append(d.turn)
            memory.store(i, obs[i], d.action, subgoal=d.subgoal)
            ep_return[i] += reward[i]
            ep_length[i] += 1
            restarts += bool(next_info[i].get("worker_restarted", False))
            if terminated[i] or truncated[i]:
                done[i] = True
                won[i] = bool(next_info[i].get("won", False))
                score[i] = float(next_info[i].get("score", float(won[i])))
        obs, per_env = next_obs, next_info
    else:
        # Envs enforce max_steps themselves; this only covers an env that does not:
        # its episodes are cut here, so their last step counts as truncated.
        for row, i in enumerate(rows["traj"]):
            if not done[i] and rows["step"][row] == max_steps - 1:
                rows["truncated"][row] = True

    order = np.lexsort((np.asarray(rows["step"]), np.asarray(rows["traj"])))  # trajectory-major
    group_ids = np.asarray(envs.group_ids, dtype=np.int64)
    traj = np.asarray(rows["traj"], dtype=np.int64)[order]
    return Rollout(
        group=group_ids[traj],
        traj=traj,
        step=np.asarray(rows["step"], dtype=np.int64)[order],
        reward=np.asarray(rows["reward"], dtype=np.float32)[order],
        valid=np.asarray(rows["valid"], dtype=bool)[order],
        keys=np.asarray(rows["keys"], dtype=np.uint64).reshape(len(order), -1)[order],
        truncated=np.asarray(rows["truncated"], dtype=bool)[order],
        prompt_ids=[rows["prompt"][j] for j in order],
        response_ids=[rows["response"][j] for j in order],
        sample_logprobs=[rows["logprobs"][j] for j in order],
        turns=[rows["turn"][j] for j in order],
        episode_return=ep_return,
        episode_length=ep_length,
        won=won,
        score=score,
        task_type=task_type,
        timings={"env_s": env_time, "policy_s": policy_time},
        worker_restarts=restarts,
    )


# ---------------------------------------------------------------- deciders


def sampling_of(g: GenerationConfig, *, evaluation: bool = False) -> Sampling:
    """The sampling parameters of a config: training (``temperature``) or evaluation."""
    return Sampling(
        temperature=g.eval_temperature if evaluation else g.temperature,
        top_p=g.top_p,
        max_new_tokens=g.max_new_tokens,
        stop_strings=tuple(g.stop_strings),
    )


def lm_decider(
    backend: GenerationBackend,
    tokenizer,
    sampling: Sampling,
    *,
    env_kind: str,
    seed: int,
    require_think: bool = True,
    project: bool = False,
    hiper: bool = False,
) -> Decider:
    """Sample a response per prompt with ``backend`` and parse ``<action>...</action>`` out of it
    (with ``hiper``, the ``<switch>``/``<subgoal>``/``<action>`` turn format).

    Every ``generate`` call gets its own seed, drawn from a stream seeded with ``seed``:
    the same seed and weights replay the same rollout (what exact resume needs).
    """
    from memory.prompts import build_chat_prompt

    seeds = np.random.default_rng(seed)

    def decide(idx, prompts, observations, infos):
        chat = [build_chat_prompt(tokenizer, p) for p in prompts]
        responses = backend.generate(chat, sampling, seed=int(seeds.integers(2**30)))
        out = []
        for r, info in zip(responses, infos, strict=True):
            admissible = list(info.get("admissible_actions", [])) if project else None
            if hiper:
                # The first turn's boundary is set from the step index after the rollout.
                turn = parse_hiper_turn(r.text, env=env_kind, admissible=admissible, project=project)
                out.append(Decision(turn.action, turn.valid, r, turn))
                continue
            parsed = parse_action(
                r.text, env=env_kind, admissible=admissible, project=project, require_think=require_think
            )
            out.append(Decision(parsed.action, parsed.valid, r))
        return out

    return decide


def expert_decider(idx, prompts, observations, infos) -> list[Decision]:
    """The env's expert (``info["expert_action"]``, e.g. ``gym.make("ALFWorld-v0", expert=True)``)."""
    out = []
    for info in infos:
        if "expert_action" not in info:
            raise KeyError("the expert policy needs info['expert_action']: make the env with expert=True")
        out.append(Decision(str(info["expert_action"])))
    return out


def random_decider(seed: int) -> Decider:
    """Uniformly random admissible actions."""
    rng = np.random.default_rng(seed)

    def decide(idx, prompts, observations, infos):
        out = []
        for info in infos:
            actions = list(info.get("admissible_actions", []))
            out.append(Decision(str(actions[rng.integers(len(actions))]) if actions else "look"))
        return out

    return decide
