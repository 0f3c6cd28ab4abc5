"""Register our env ids the moment ``gymnasium.envs`` is imported.

Gymnasium 1.x removed its entry-point plugin loader, so ``gym.make("ALFWorld-v0")``
would need an explicit ``import agentenv``. The wheel ships a ``.pth`` file that
imports this module at interpreter start-up; it only adds a meta-path finder
(a few microseconds) and imports nothing else. When ``gymnasium.envs`` is
later imported, the finder lets the normal loader run and then registers our ids.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_TARGET = "gymnasium.envs"


class _RegisterAfterGymnasiumEnvs(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # find the real spec without finding ourselves again
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            real_exec(module)
            try:
                from agentenv.registration import register_envs

                register_envs()
            except Exception:  # never break `import gymnasium` for an unrelated user
                pass

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Install the hook, or register at once if gymnasium is already imported."""
    if _TARGET in sys.modules:
        from agentenv.registration import register_envs

        register_envs()
    elif not any(isinstance(f, _RegisterAfterGymnasiumEnvs) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterGymnasiumEnvs())


install()
