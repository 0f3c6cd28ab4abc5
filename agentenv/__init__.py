"""Gymnasium text environments for long-horizon agent RL: ALFWorld and WebShop.

Importing this package is cheap on purpose: it runs at interpreter start-up
(through ``hgpo_agents_gym.pth``) to make ``gym.make("ALFWorld-v0")`` work with
no import, so it must not import gymnasium, textworld or requests here.
"""

__all__ = ["ENV_IDS"]

#: The environment ids this package registers with gymnasium.
ENV_IDS = ("ALFWorld-v0", "WebShop-v0", "WebShopBrowser-v0")
