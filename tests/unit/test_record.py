"""pyoci.record: the frozen/mutable value records the config model is built from (issue 5:
attrs and dataclasses cost more to import than runc's whole create)."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from pyoci.record import FrozenInstanceError, asdict, evolve, field, fields, frozen, mutable

REPO = Path(__file__).resolve().parents[2]


@frozen
class Point:
    """A point, with a method, a property and an unannotated class constant."""
    ORIGIN_NAME = "origin"
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()

    def moved(self, dx: int) -> Point:
        return evolve(self, x=self.x + dx)

    @property
    def is_origin(self) -> bool:
        return self.x == 0 and self.y == 0


@frozen
class Point3(Point):
    z: int = 0

    def moved(self, dx: int) -> Point:
        moved = super().moved(dx)   # zero-argument super() must reach the new class
        assert isinstance(moved, Point3)
        return moved


@mutable
class Bag:
    items: list[int] = field(factory=list)
    name: str = "bag"


# --- construction -----------------------------------------------------------------------

def test_positional_keyword_and_defaults() -> None:
    assert (Point(1, 2).x, Point(1, 2).y) == (1, 2)
    p = Point(y=5, x=3)
    assert (p.x, p.y, p.tags) == (3, 5, ())
    assert Point(7).y == 0
    assert Point(1, tags=("a",)).tags == ("a",)


def test_factory_gives_each_instance_its_own_value() -> None:
    a, b = Bag(), Bag()
    a.items.append(1)
    assert a.items == [1] and b.items == []
    assert Bag([4]).items == [4]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Point(), r"missing 1 required argument: 'x'"),
    (lambda: Point(1, z=2), r"unexpected keyword argument 'z'"),
    (lambda: Point(1, x=2), r"multiple values for argument 'x'"),
    (lambda: Point(1, 2, (), 4), r"takes 4 positional arguments but 5 were given"),
])
def test_bad_arguments_raise_type_error(call: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()  # type: ignore[operator]


def test_missing_several_names_them_all() -> None:
    @frozen
    class Three:
        a: int
        b: int
        c: int

    with pytest.raises(TypeError, match=r"missing 3 required arguments: 'a', 'b' and 'c'"):
        Three()  # type: ignore[call-arg]


def test_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="'b' without a default follows 'a'"):
        @frozen
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_classvar_annotation_is_not_a_field() -> None:
    @frozen
    class WithConst:
        LIMIT: ClassVar[int] = 3
        value: int

    assert fields(WithConst) == ("value",)
    assert WithConst(1).LIMIT == 3


# --- immutability, slots --------------------------------------------------------------

def test_frozen_refuses_assignment_and_deletion() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):   # FrozenInstanceError is an AttributeError
        del p.y
    with pytest.raises(AttributeError):
        p.other = 1  # type: ignore[attr-defined]
    assert p.x == 1 and p.y == 0


def test_mutable_allows_assignment_and_is_unhashable() -> None:
    b = Bag()
    b.name = "other"
    assert b.name == "other"
    with pytest.raises(TypeError):
        hash(b)


def test_instances_have_slots_not_a_dict() -> None:
    assert Point.__slots__ == ("x", "y", "tags")
    assert Point3.__slots__ == ("z",)   # the base's fields stay in the base's slots
    assert not hasattr(Point(1), "__dict__")
    assert not hasattr(Bag(), "__dict__")


def test_body_members_keep_working() -> None:
    assert Point.ORIGIN_NAME == "origin" and Point(0).ORIGIN_NAME == "origin"
    assert Point(0).is_origin and not Point(0, 1).is_origin
    assert Point(1, 2).moved(3) == Point(4, 2)
    assert Point.__name__ == "Point" and Point.__doc__.startswith("A point")
    assert Point.__module__ == __name__


# --- eq / hash / repr -------------------------------------------------------------------

def test_equality_and_hash_follow_the_fields() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2).__ne__(Point(1, 2)) is False
    assert Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2, ("a",))) == hash(Point(1, 2, ("a",)))
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert Bag([1]) == Bag([1]) and Bag([1]) != Bag([2])


def test_equality_needs_the_same_class() -> None:
    assert Point(1, 0) != Point3(1, 0, (), 0)
    assert Point(1) != (1, 0, ())
    assert Point(1).__eq__((1, 0, ())) is NotImplemented


def test_repr_like_attrs() -> None:
    assert repr(Point(1, tags=("a",))) == "Point(x=1, y=0, tags=('a',))"
    assert repr(Bag()) == "Bag(items=[], name='bag')"

    @frozen
    class Local:
        path: str

    assert repr(Local("/x")) == "Local(path='/x')"
    assert Local.__qualname__.endswith("<locals>.Local")


# --- evolve / fields / asdict / copy / pickle -------------------------------------------

def test_evolve_copies_with_changes() -> None:
    p = Point(1, 2, ("a",))
    q = evolve(p, y=9)
    assert q == Point(1, 9, ("a",)) and p == Point(1, 2, ("a",))
    assert type(evolve(Point3(1, z=3), x=2)) is Point3
    assert evolve(Point3(1, z=3), x=2).z == 3
    with pytest.raises(TypeError, match="no field 'w'"):
        evolve(p, w=1)


def test_fields_and_asdict() -> None:
    assert fields(Point) == ("x", "y", "tags")
    assert fields(Point3) == ("x", "y", "tags", "z")
    assert fields(Point(1)) == ("x", "y", "tags")
    assert asdict(Point3(1, 2)) == {"x": 1, "y": 2, "tags": (), "z": 0}
    with pytest.raises(TypeError):
        fields(int)


def test_subclass_adds_fields_after_the_base() -> None:
    p = Point3(1, 2, (), 3)
    assert (p.x, p.y, p.z) == (1, 2, 3)
    assert Point3(x=1, z=5).y == 0
    assert isinstance(p, Point)
    assert p.moved(1) == Point3(2, 2, (), 3)
    with pytest.raises(FrozenInstanceError):
        p.z = 1  # type: ignore[misc]


def test_mutable_record_cannot_extend_a_frozen_one() -> None:
    with pytest.raises(TypeError, match="cannot subclass the frozen record"):
        @mutable
        class Loose(Point):
            w: int = 0


def test_copy_and_pickle_round_trip() -> None:
    p = Point3(1, 2, ("a",), 4)
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(p)) == p
    b = Bag([1, 2], "b")
    assert pickle.loads(pickle.dumps(b)) == b


def test_model_classes_are_records() -> None:
    from pyoci.config import model

    hooks = model.Hooks(prestart=(model.Hook("/bin/true"),))
    assert fields(model.Hooks)[0] == "prestart"
    assert evolve(model.Root("/r"), readonly=True) == model.Root("/r", True)
    with pytest.raises(FrozenInstanceError):
        hooks.poststop = ()  # type: ignore[misc]
    assert model.NetDevice("eth0").target == "eth0"
    assert model.Spec("1.3.0").linux.namespace("pid") is None


# --- import cost ------------------------------------------------------------------------

_PROBE = """
import json, sys
before = set(sys.modules)
import pyoci.config.model
print(json.dumps(sorted(set(sys.modules) - before)))
"""

FORBIDDEN = ("attr", "attrs", "dataclasses", "typing", "re", "enum", "inspect", "types",
             "functools", "collections")


def test_importing_the_model_pulls_no_heavy_stdlib_module() -> None:
    """Compared with the modules already loaded before the import: the interpreter's site
    step (an editable install's finder) may have loaded some of these itself."""
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True, cwd=REPO)
    new = json.loads(out.stdout)
    assert "pyoci.config.model" in new and "pyoci.record" in new
    assert [m for m in new if m.split(".")[0] in FORBIDDEN] == []


def test_the_record_module_pulls_nothing_under_isolated_startup() -> None:
    """Without site (-S -I), so nothing is preloaded: pyoci.record and the model must add
    no module beyond themselves, their packages and ``__future__`` (which the compiler
    directive ``from __future__ import annotations`` really imports; it is tiny)."""
    probe = f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + _PROBE
    out = subprocess.run([sys.executable, "-S", "-I", "-c", probe], capture_output=True,
                         text=True, check=True)
    new = json.loads(out.stdout)
    assert sorted(new) == ["__future__", "pyoci", "pyoci.config", "pyoci.config.model",
                           "pyoci.record"]
