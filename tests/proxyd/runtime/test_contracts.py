"""Every session kind and strategy offers its whole contract (proxyd.serving.contracts), with the
same signatures: the dispatcher, timers, resume, reports and wmext never probe for a member."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from proxyd.cache.replay import ReplaySession
from proxyd.cache.strategy import CacheStrategy
from proxyd.player.connection import PlayerConnection
from proxyd.relay.session import ProxySession
from proxyd.serving.contracts import Player, PlayerSession, ServingStrategy
from proxyd.serving.resumable import Resumable
from proxyd.serving.session_base import SessionBase
from proxyd.split.player import SplitSession
from proxyd.split.strategy import SplitStrategy


def members(protocol: type) -> dict[str, object]:
    """Methods and properties a Protocol declares (its data attributes are checked separately)."""
    return {name: value for name, value in vars(protocol).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


def parameters(function) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("protocol, implementation", [
    (PlayerSession, ProxySession), (PlayerSession, ReplaySession), (PlayerSession, SplitSession),
    (ServingStrategy, CacheStrategy), (ServingStrategy, SplitStrategy),
    (Player, PlayerConnection),
])
def test_implementation_offers_every_member_with_the_same_signature(protocol, implementation):
    for name, declared in members(protocol).items():
        offered = inspect.getattr_static(implementation, name, None)
        assert offered is not None, f"{implementation.__name__} lacks {name}"
        if isinstance(declared, property):
            assert isinstance(offered, property), f"{implementation.__name__}.{name} is not a property"
        else:
            assert parameters(offered) == parameters(declared), f"{implementation.__name__}.{name}"


def assigned_in_init(cls: type) -> set[str]:
    """`self.x = ...` / `self.x: T = ...` targets of cls.__init__."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        names |= {t.attr for t in targets if isinstance(t, ast.Attribute)}
    return names


def test_session_data_attributes_are_set_by_the_shared_base():
    """PlayerSession's data members come from SessionBase.__init__ (or Resumable's defaults)."""
    offered = assigned_in_init(SessionBase) | {n for n in vars(Resumable) if not n.startswith("_")}
    assert sorted(set(PlayerSession.__annotations__) - offered) == []
    for kind in (ProxySession, ReplaySession, SplitSession):
        assert issubclass(kind, SessionBase)


def test_the_check_sees_a_missing_member_and_a_different_signature():
    class Partial:
        def touch(self) -> None: ...

        def close(self, reason: str) -> None: ...  # no detail, no origin_teardown

    with pytest.raises(AssertionError, match="close"):
        test_implementation_offers_every_member_with_the_same_signature(
            type("Only", (), {"close": PlayerSession.close, "__annotations__": {}}), Partial)
    with pytest.raises(AssertionError, match="lacks"):
        test_implementation_offers_every_member_with_the_same_signature(PlayerSession, Partial)
