"""WebShop (Yao et al., 2022) as Gymnasium text environments.

- ``WebShop-v0`` (:class:`agentenv.webshop.env.WebShopEnv`): WebShop's text environment over the
  server's JSON API (a running ``webshop-server``, or one started in-process);
- ``WebShopBrowser-v0`` (:class:`agentenv.webshop.browser.WebShopBrowserEnv`): the same game
  played in a real headless Chromium driven by selenium.

Kept import-light: gymnasium, requests and selenium load with the env modules.
"""

__all__ = ["WebShopBrowserEnv", "WebShopEnv"]


def __getattr__(name: str):
    if name == "WebShopEnv":
        from .env import WebShopEnv

        return WebShopEnv
    if name == "WebShopBrowserEnv":
        from .browser import WebShopBrowserEnv

        return WebShopBrowserEnv
    raise AttributeError(name)
