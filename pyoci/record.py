"""Typed value records: the tiny stand-in for attrs / dataclasses that pyoci's models use.

Why not attrs or dataclasses (issue 5): ``import attrs`` costs ~37 ms here and building
the ~40 model classes with it ~15 ms more; ``dataclasses`` pulls in inspect, re and copy.
runc's whole ``create`` takes ~32 ms, so a runtime that must stay within a small factor of
it cannot spend that on class machinery. This module imports nothing and decorates a
class in about ten microseconds: it generates no source (no ``exec``); every record class
shares the same few methods, which read the field names from the class.

A record class is written like a dataclass::

    @frozen
    class Root:
        path: str
        readonly: bool = False

* Fields are the names annotated in the class body, in order (annotations are not
  evaluated: modules use ``from __future__ import annotations``; ``ClassVar[...]`` ones
  are class constants, not fields). A class attribute of the same name is the default;
  ``field(factory=list)`` makes a fresh default per instance. A record may subclass
  another record (a mutable one not a frozen one): the base's fields come first.
* The decorator returns a new class with ``__slots__`` (one per field), so instances are
  small and have no ``__dict__``; methods, properties and unannotated class constants of
  the body are kept.
* Instances take positional and keyword arguments like a function with those parameters;
  ``==`` compares the class and every field; ``repr`` is ``Root(path='/x', readonly=False)``.
  :func:`frozen` instances are immutable (assignment raises :class:`FrozenInstanceError`)
  and hashable by their fields; :func:`mutable` ones are assignable and unhashable.
* :func:`evolve` copies with changes, :func:`fields` names the fields, :func:`asdict`
  gives a shallow dict. Instances pickle and ``copy`` through their constructor.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TypeVar, dataclass_transform

    _C = TypeVar("_C", bound=type)
    _R = TypeVar("_R")
else:
    def dataclass_transform(**_: object) -> Callable[[_C], _C]:
        """Run time: nothing. Checkers read ``typing.dataclass_transform`` (PEP 681) and
        so see the ``__init__`` that :func:`_build` makes; importing typing would cost
        ~3 ms per command."""
        return lambda func: func

__all__ = ["FrozenInstanceError", "asdict", "define", "evolve", "field", "fields", "frozen",
           "mutable"]

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assignment to (or deletion of) a field of a :func:`frozen` record."""


class _Factory:
    """A default made fresh for each instance (a mutable default must not be shared)."""

    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Any] | None) -> None:
        self.factory = factory

    def __repr__(self) -> str:
        return f"field(factory={self.factory!r})"


_REQUIRED = _Factory(None)  # type: ignore[arg-type]  # the default of a field without one


def field(*, factory: Callable[[], _R]) -> _R:
    """Default for a field made by calling ``factory()`` for each new instance."""
    return _Factory(factory)  # type: ignore[return-value]  # the checker sees the value type


# --- the shared methods; the class's __record_fields__ / __record_defaults__ drive them ---

def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    # Generic, so that no source is generated per class. Each field's (name, default,
    # slot setter) is precomputed in __record_spec__; a default that is a _Factory is
    # either a factory or, with factory None, the mark of a required field.
    spec = type(self).__record_spec__
    if args:
        if len(args) > len(spec):
            _too_many(self, len(args))
        for (_, _, setter), value in zip(spec, args, strict=False):
            setter(self, value)
        if len(args) == len(spec) and not kwargs:
            return
        spec = spec[len(args):]
    missing = None
    pop = kwargs.pop
    for name, default, setter in spec:
        value = pop(name, default) if kwargs else default
        if type(value) is _Factory:
            if value.factory is None:
                missing = [name] if missing is None else [*missing, name]
                continue
            value = value.factory()
        setter(self, value)
    if kwargs or missing:
        _bad_arguments(self, kwargs, missing)


def _too_many(self: Any, given: int) -> None:
    cls = type(self)
    raise TypeError(f"{cls.__qualname__}.__init__() takes {len(cls.__record_fields__) + 1} "
                    f"positional arguments but {given + 1} were given")


def _bad_arguments(self: Any, unknown: dict[str, Any], missing: list[str] | None) -> None:
    """The TypeError a function with the same parameters would raise."""
    cls = type(self)
    where = f"{cls.__qualname__}.__init__()"
    if unknown:
        name = next(iter(unknown))
        what = "multiple values for argument" if name in cls.__record_fields__ else \
            "an unexpected keyword argument"
        raise TypeError(f"{where} got {what} {name!r}")
    assert missing
    listed = " and ".join(repr(n) for n in missing[-2:])
    if len(missing) > 2:
        listed = ", ".join(repr(n) for n in missing[:-2]) + ", " + listed
    raise TypeError(f"{where} missing {len(missing)} required "
                    f"argument{'s' if len(missing) > 1 else ''}: {listed}")


def _values(self: Any) -> tuple[Any, ...]:
    return tuple([getattr(self, n) for n in type(self).__record_fields__])


def _repr(self: Any) -> str:
    cls = type(self)
    body = ", ".join([f"{n}={getattr(self, n)!r}" for n in cls.__record_fields__])
    return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({body})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _ne(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) != _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _reduce(self: Any) -> tuple[Any, ...]:
    # Rebuilding through the constructor is what lets pickle / copy handle frozen slots
    # (the default protocol would setattr each slot, which a frozen record refuses).
    return type(self), _values(self)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of frozen "
                              f"{type(self).__qualname__}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of frozen "
                              f"{type(self).__qualname__}")


# --- building the class ---

_GENERATED = {"__init__": _init, "__repr__": _repr, "__eq__": _eq, "__ne__": _ne,
              "__reduce__": _reduce}

_CLASSVAR = ("ClassVar", "typing.ClassVar", "t.ClassVar")


def _is_classvar(annotation: object) -> bool:
    """For annotations that are objects (a module without the __future__ import)."""
    return str(getattr(annotation, "__name__", annotation)).startswith(_CLASSVAR)


_function = type(_init)


def _rebind_class_cells(body: Mapping[str, Any], new: type) -> None:
    """Point the ``__class__`` cell (zero-argument ``super()``) of the body's methods at
    the new class: the compiler bound it to the class this decorator replaces."""
    for value in body.values():
        kind = type(value)
        if kind is _function:
            funcs: tuple[Any, ...] = (value,)
        elif kind is property:
            funcs = (value.fget, value.fset, value.fdel)
        elif kind is classmethod or kind is staticmethod:
            funcs = (value.__func__,)
        else:
            continue
        for func in funcs:
            if type(func) is _function and "__class__" in func.__code__.co_freevars \
                    and func.__closure__ is not None:
                cell = func.__closure__[func.__code__.co_freevars.index("__class__")]
                cell.cell_contents = new


def _build(cls: type, is_frozen: bool) -> type:
    own = cls.__dict__
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:-1]):   # not cls itself, nor object
        kind = base.__dict__.get("__record_frozen__")
        if kind is None:
            continue
        if kind and not is_frozen:
            raise TypeError(f"{cls.__qualname__}: a mutable record cannot subclass the "
                            f"frozen record {base.__qualname__}")
        for name in base.__record_fields__:  # type: ignore[attr-defined]  # set by _build
            if name not in names:
                names.append(name)
        defaults.update(base.__record_defaults__)  # type: ignore[attr-defined]
    base_names = tuple(names)

    namespace = dict(own)
    for name, annotation in own.get("__annotations__", {}).items():
        if (annotation.startswith(_CLASSVAR) if type(annotation) is str
                else _is_classvar(annotation)):
            continue
        if name not in names:
            names.append(name)
        value = namespace.pop(name, _MISSING)
        if value is not _MISSING:
            defaults[name] = value
        else:
            defaults.pop(name, None)   # re-annotated without a default: required again
    seen_default = ""
    for name in names:
        if name in defaults:
            seen_default = name
        elif seen_default:
            raise TypeError(f"{cls.__qualname__}: field {name!r} without a default follows "
                            f"{seen_default!r}, which has one")

    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(names[len(base_names):])
    namespace["__record_fields__"] = tuple(names)
    namespace["__record_defaults__"] = defaults
    namespace["__record_frozen__"] = is_frozen
    # Filled once the slots exist; a list set now, since assigning a dunder attribute to a
    # class after creation costs more than building the class's whole namespace.
    namespace["__record_spec__"] = spec = []
    namespace["__match_args__"] = tuple(names)
    namespace["__qualname__"] = cls.__qualname__   # type() would default it to the bare name
    for name, func in _GENERATED.items():
        namespace.setdefault(name, func)   # a method the body defines wins, as in dataclasses
    if is_frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
        # A body defining __eq__ gets __hash__ = None implicitly; only an explicit one stays.
        if "__hash__" not in own or ("__eq__" in own and own["__hash__"] is None):
            namespace["__hash__"] = _hash
    elif own.get("__hash__") is None:
        namespace["__hash__"] = None   # equal-by-value and assignable: unhashable
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    spec += [(n, defaults.get(n, _REQUIRED), getattr(new, n).__set__) for n in names]
    _rebind_class_cells(own, new)
    return new


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: _C) -> _C:
    """Class decorator: an immutable, hashable record (see the module docstring)."""
    return _build(cls, True)  # type: ignore[return-value]


@dataclass_transform(field_specifiers=(field,))
def mutable(cls: _C) -> _C:
    """Class decorator: a record whose fields can be reassigned (unhashable)."""
    return _build(cls, False)  # type: ignore[return-value]


define = mutable   # attrs's name for the same thing


def fields(cls: type | object) -> tuple[str, ...]:
    """The field names of a record class (or of a record's class), in order."""
    names = getattr(cls, "__record_fields__", None)
    if names is None:
        raise TypeError(f"{cls!r} is not a record class")
    return names  # type: ignore[no-any-return]


def evolve(obj: _R, **changes: Any) -> _R:
    """A copy of the record ``obj`` with ``changes`` applied (through its constructor, so
    an unknown field name is a TypeError)."""
    cls = type(obj)
    args = [changes.pop(n) if n in changes else getattr(obj, n) for n in fields(cls)]
    if changes:
        raise TypeError(f"{cls.__qualname__} has no field {next(iter(changes))!r}")
    return cls(*args)


def asdict(obj: object) -> dict[str, Any]:
    """Field name -> value of a record (shallow: nested records stay records)."""
    return {n: getattr(obj, n) for n in fields(type(obj))}
