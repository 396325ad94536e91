"""The dataclasses whose ``__init__``, ``__repr__``, ``__eq__`` (and ``__hash__``) are written out in
their source (``dc_api_x/_factory.py``, issue 15) behave as the ones ``@dataclass`` generates from
the same fields: signature, attributes, factories, repr, equality, hashing, frozenness,
``replace()``, ``asdict()`` and ``__match_args__``; and a start-up creates them without compiling."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from dc_api_x import plugins, registry, types
from dc_api_x.ext import partitions, sql
from dc_api_x.runner import history, locks, progress, state

WRITTEN = [
    types.StreamSpec,
    types.WriteResult,
    registry._Entry,
    plugins.PluginInfo,
    history.StreamRecord,
    history.RunRecord,
    progress.StreamMetrics,
    progress.RunMetrics,
    locks.LockHolder,
    state.StateEntry,
    partitions.Partition,
    sql.SQLSource,
    sql.SQLWrite,
]


def _generated(cls: type) -> type:
    """The dataclass ``@dataclass`` generates from ``cls``'s fields (same name, frozenness)."""
    ns: dict[str, Any] = {
        "__annotations__": {},
        "__qualname__": cls.__qualname__,
        "__module__": cls.__module__,
    }
    for f in dataclasses.fields(cls):
        ns["__annotations__"][f.name] = f.type
        kw: dict[str, Any] = {"repr": f.repr, "compare": f.compare, "hash": f.hash, "init": f.init}
        if f.default is not dataclasses.MISSING:
            kw["default"] = f.default
        if f.default_factory is not dataclasses.MISSING:
            kw["default_factory"] = f.default_factory
        ns[f.name] = dataclasses.field(**kw)
    frozen = cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    return dataclasses.dataclass(frozen=frozen)(type(cls.__name__, (), ns))


def _args(cls: type, tag: str) -> dict[str, Any]:
    """A value for every field (distinct per ``tag``), hashable ones where a default is."""
    return {f.name: f"{tag}-{f.name}" for f in dataclasses.fields(cls)}


def _same_attributes(a: Any, b: Any) -> None:
    """The same attributes in the same order, equal ones (a factory's: of the same type, e.g. a
    lock or a ``time.monotonic()`` reading)."""
    made = {f.name for f in dataclasses.fields(a) if f.default_factory is not dataclasses.MISSING}
    va, vb = vars(a), vars(b)
    assert list(va) == list(vb)
    for k in va:
        assert type(va[k]) is type(vb[k]), k
        if k not in made or isinstance(va[k], str):
            assert va[k] == vb[k], k


def _align(a: Any, b: Any) -> None:
    """Give ``b`` the clock readings its factories made for ``a`` (``time.monotonic()``)."""
    for f in dataclasses.fields(a):
        if f.default_factory is not dataclasses.MISSING and isinstance(getattr(a, f.name), float):
            object.__setattr__(b, f.name, getattr(a, f.name))


@pytest.mark.parametrize("cls", WRITTEN, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_written_methods_equal_the_generated_ones(cls: type) -> None:
    ref = _generated(cls)
    params = dataclasses.fields(cls)
    # the signature: names, kinds, defaults (a factory's shown as <factory>)
    sig = [(p.name, p.kind, repr(p.default)) for p in inspect.signature(cls).parameters.values()]
    assert sig == [(p.name, p.kind, repr(p.default)) for p in inspect.signature(ref).parameters.values()]
    assert cls.__match_args__ == ref.__match_args__  # type: ignore[attr-defined]
    required = [
        f.name
        for f in params
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    # defaults and factories (a fresh object each time)
    pos = [f"v-{n}" for n in required]
    a, r = cls(*pos), ref(*pos)
    _same_attributes(a, r)
    _align(a, r)
    assert repr(a) == repr(r)
    for f in params:
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(a, f.name) is not getattr(cls(*pos), f.name)
    # every field given, by keyword and by position
    kw = _args(cls, "x")
    a, r = cls(**kw), ref(**kw)
    _same_attributes(a, r)
    assert repr(a) == repr(r)
    assert vars(cls(*kw.values())) == vars(a)
    assert dataclasses.asdict(a) == dataclasses.asdict(r)
    # equality: the fields that compare, same class only
    assert (a == cls(**kw)) is (r == ref(**kw))
    for f in params:
        other = cls(**{**kw, f.name: "changed"})
        assert (a == other) is (r == ref(**{**kw, f.name: "changed"})), f.name
    assert a.__eq__(object()) is NotImplemented and r.__eq__(object()) is NotImplemented
    # hashing: a frozen class hashes its compared fields, the others are unhashable
    if ref.__hash__ is None:
        assert cls.__hash__ is None
    else:
        assert hash(a) == hash(r)
    # frozen or not, as before; replace() builds through the written __init__
    frozen = ref.__dataclass_params__.frozen  # type: ignore[attr-defined]
    if frozen:
        with pytest.raises(dataclasses.FrozenInstanceError):
            a.__setattr__(params[0].name, "y")
    else:
        setattr(a, params[0].name, "y")
        assert getattr(a, params[0].name) == "y"
    b = dataclasses.replace(cls(**kw), **{params[-1].name: "z"})
    assert getattr(b, params[-1].name) == "z" and type(b) is cls
    # missing / unexpected arguments fail as the generated __init__ fails
    if required:
        with pytest.raises(TypeError):
            cls()
    with pytest.raises(TypeError):
        cls(*pos, unexpected=1)


@pytest.mark.parametrize("cls", WRITTEN, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_no_method_is_generated(cls: type) -> None:
    """``init``, ``repr`` and ``eq`` off: nothing compiled when the class is created (a frozen one
    keeps ``frozen``: its ``__setattr__`` / ``__delattr__`` are generated)."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert not params.init and not params.repr and not params.eq
    for name in ("__init__", "__eq__"):
        assert cls.__dict__[name].__code__.co_filename == inspect.getsourcefile(cls), name
    # (__repr__ is wrapped by reprlib.recursive_repr, as the generated one is by its own guard)
    assert cls.__dict__["__repr__"].__code__.co_filename != "<string>"
    if params.frozen:
        assert cls.__dict__["__hash__"].__code__.co_filename == inspect.getsourcefile(cls)
