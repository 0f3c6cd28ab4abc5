"""Registration of our environment ids with gymnasium.

Entry points are strings, so nothing heavy is imported until ``gym.make`` runs.
Step limits live inside the envs (``max_steps`` kwarg), not in a ``TimeLimit``
wrapper, so the limit holds whether an env is built by ``gym.make`` or directly.
"""

from __future__ import annotations

_SPECS = {
    "ALFWorld-v0": "agentenv.alfworld.env:ALFWorldEnv",
    "WebShop-v0": "agentenv.webshop.env:WebShopEnv",
    "WebShopBrowser-v0": "agentenv.webshop.browser:WebShopBrowserEnv",
}


def register_envs() -> None:
    """Register ``ALFWorld-v0``, ``WebShop-v0`` and ``WebShopBrowser-v0`` (idempotent)."""
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point in _SPECS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, disable_env_checker=True)
