"""``WebShopBrowser-v0``: WebShop played in a real headless Chromium driven by selenium."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .env import PageState, WebShopEnv

# Flags that let Chromium run headless in containers and offline (no sandbox, no /dev/shm,
# no background downloads or sign-in).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
)


# One round trip instead of one per element (selenium asks the browser for each attribute).
_FIND_CLICKABLE_JS = """
const name = arguments[0];
let found = null;
for (const selector of [".btn", ".product-link"]) {
  for (const element of document.querySelectorAll(selector)) {
    if (element.textContent.trim().toLowerCase() === name) { found = element; }
  }
}
for (const radio of document.querySelectorAll('input[type="radio"]')) {
  if ((radio.value || "").toLowerCase() === name) {
    found = document.querySelector('label[for="' + CSS.escape(radio.id) + '"]') || radio;
  }
}
return found;
"""


def _shutdown_browser(driver: Any, profile_dir: str) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(profile_dir, ignore_errors=True)


class WebShopBrowserEnv(WebShopEnv):
    """WebShop (Yao et al., 2022) played through the server's HTML pages in headless Chromium.

    Same actions, observations, rewards and ``info`` keys as :class:`WebShopEnv` (read its
    docstring); only the way each action is carried out differs. ``reset`` creates the server
    session over the JSON API (to pick the goal) and opens ``/<session_id>`` in Chromium; then

    - ``search[q]`` types ``q`` into ``#search_input`` and presses Search (from a page without a
      search box it opens the results URL the search box would lead to: WebShop lets a search
      start anywhere);
    - ``click[x]`` clicks the button, product link or option label whose text is ``x``;

    and the observation is read from the rendered DOM (``driver.page_source``) with the
    server's own text conversion, so both envs give identical texts. The score is read from the
    done page's ``#reward pre``.

    ## Arguments
    Those of :class:`WebShopEnv` (HTTP only), plus ``chromium_path``, ``chromedriver_path`` and
    ``page_load_timeout`` (seconds). Chromium starts at the first reset with a temporary
    profile folder; ``close()`` quits it and removes the folder.
    """

    def __init__(
        self,
        server_url: str | None = None,
        split: Literal["test", "eval", "train"] = "test",
        observation_mode: Literal["text", "text_rich"] = "text",
        max_steps: int = 15,
        success_reward: float = 10.0,
        *,
        chromium_path: str | Path = "/usr/bin/chromium",
        chromedriver_path: str | Path = "/usr/bin/chromedriver",
        page_load_timeout: float = 30.0,
        **kwargs: Any,
    ):
        if kwargs.get("transport", "http") != "http":
            raise ValueError("WebShopBrowserEnv reaches the server over HTTP: transport must be 'http'")
        super().__init__(server_url, split, observation_mode, max_steps, success_reward, **kwargs)
        self.chromium_path = str(chromium_path)
        self.chromedriver_path = str(chromedriver_path)
        self.page_load_timeout = page_load_timeout
        self._driver: Any = None
        self._finalizer: weakref.finalize | None = None
        self._task: tuple[str, int] = ("", -1)

    # ---- the browser

    @property
    def driver(self) -> Any:
        """The selenium Chrome driver, started on first use."""
        if self._driver is None:
            os.environ.setdefault("SE_AVOID_STATS", "true")  # no usage statistics from selenium
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service

            options = webdriver.ChromeOptions()
            options.binary_location = self.chromium_path
            for flag in CHROMIUM_FLAGS:
                options.add_argument(flag)
            profile_dir = tempfile.mkdtemp(prefix="webshop-chromium-")
            options.add_argument(f"--user-data-dir={profile_dir}")
            try:
                driver = webdriver.Chrome(service=Service(self.chromedriver_path), options=options)
            except Exception:
                shutil.rmtree(profile_dir, ignore_errors=True)
                raise
            driver.set_page_load_timeout(self.page_load_timeout)
            self._driver = driver
            self._finalizer = weakref.finalize(self, _shutdown_browser, driver, profile_dir)
        return self._driver

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._driver = self._finalizer = None
        super().close()

    # ---- backend

    def _open(self, goal_index: int) -> PageState:
        session = super()._open(goal_index)  # the server session, on this goal
        self._task = (session.instruction, session.goal_index)
        self.driver.get(f"{self.server_url.rstrip('/')}/{self._session_id}")
        return self._read_page()

    def _act(self, action: str) -> tuple[PageState, bool, str | None]:
        from selenium.webdriver.common.by import By

        from servers.webshop.session import MAX_ACTION_CHARS, Page, ShopError
        from servers.webshop.text import parse_action

        if len(action) > MAX_ACTION_CHARS:
            return self._state, False, f"the action is {len(action)} characters long; the limit is {MAX_ACTION_CHARS}"
        name, argument = parse_action(action)
        clickables = self._state.available_actions["clickables"]
        if name == "search" and argument is not None:
            try:
                results = Page.results(argument)  # the server's own checks, so both envs refuse alike
            except ShopError as error:
                return self._state, False, error.message
            if self._state.available_actions["has_search_bar"]:
                box = self.driver.find_element(By.ID, "search_input")
                # Set the value by script: send_keys cannot type characters outside the BMP.
                self.driver.execute_script("arguments[0].value = arguments[1];", box, argument)
                self._follow(self.driver.find_element(By.ID, "search-button"))
            else:  # WebShop lets a search start on any page: open its results as the search box would
                self.driver.get(f"{self.server_url.rstrip('/')}{results.path(self._session_id)}")
        elif name == "click" and argument != "search" and argument in clickables:
            element = self._find_clickable(argument)
            if element is None:  # the page changed under us; nothing was clicked
                return self._state, False, None
            self._follow(element)
        else:
            return self._state, False, None
        return self._read_page(), True, None

    @property
    def max_query_chars(self) -> int:
        return int(self.world_info["limits"]["max_query_chars"])

    def _find_clickable(self, name: str) -> Any:
        """The element ``click[name]`` means, found as WebShop's text env does: buttons, then product
        links, then option values (an option is clicked through its label); the last match wins."""
        return self.driver.execute_script(_FIND_CLICKABLE_JS, name)

    def _follow(self, element: Any) -> None:
        """Click ``element`` and wait until the page it leads to has loaded."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            ElementNotInteractableException,
            WebDriverException,
        )
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        old_page = self.driver.find_element(By.TAG_NAME, "html")
        try:
            element.click()
        except (ElementClickInterceptedException, ElementNotInteractableException):
            # Covered or off-screen: click it the way a script would.
            self.driver.execute_script("arguments[0].click();", element)
        # While the old document unloads, a script or element call can fail: poll on until the timeout.
        wait = WebDriverWait(
            self.driver, self.page_load_timeout, poll_frequency=0.01, ignored_exceptions=(WebDriverException,)
        )
        wait.until(expected_conditions.staleness_of(old_page))
        wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")

    def _read_page(self) -> PageState:
        from selenium.webdriver.common.by import By

        from servers.webshop.text import parse_page

        view = parse_page(self.driver.page_source)
        path = urlsplit(self.driver.current_url).path
        done = path.startswith("/done/")
        score = 0.0
        if done:
            score = float(
                self.driver.find_element(By.CSS_SELECTOR, "#reward pre").get_attribute("textContent")
            )
        instruction, goal_index = self._task
        return PageState(
            view.text, view.text_rich, view.available_actions, path, instruction, goal_index, done, score
        )
