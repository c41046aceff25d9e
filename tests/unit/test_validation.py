"""Validation messages: JSON path, what was expected, what was found; all at once."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pyoci.config.bundle import load_bundle, validate_document
from pyoci.config.loader import load_spec
from pyoci.config.model import Spec
from pyoci.errors import ConfigError
from tests.helpers import BASE_CONFIG, REFERENCE_CONFIGS


def _problems(doc: dict, bundle: str | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_document(doc, bundle)
    return info.value.problems


def test_base_config_is_valid() -> None:
    validate_document(copy.deepcopy(BASE_CONFIG), None)


def test_every_problem_is_reported_with_its_path() -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["process"]["args"] = "sh"
    doc["process"]["user"]["gid"] = "0"
    doc["linux"]["namespaces"].append({"type": "pid"})
    problems = dict(_problems(doc))
    assert problems["process.args"] == 'expected array, found "sh" (string)'
    assert problems["process.user.gid"].startswith("expected integer")
    assert "listed more than once" in problems["linux.namespaces[5].type"]


def test_missing_required_names_the_missing_key() -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    del doc["ociVersion"]
    assert ("ociVersion", "is required but missing") in _problems(doc)


def test_unknown_properties_are_accepted() -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["future"] = {"x": 1}
    doc["process"]["somethingNew"] = True
    doc["linux"]["brandNew"] = []
    validate_document(doc, None)


def test_rootfs_must_exist(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    problems = dict(_problems(doc, str(tmp_path)))
    assert "does not exist" in problems["root.path"]


def test_error_message_lists_every_problem() -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["process"]["cwd"] = "relative"
    doc["hostname"] = 7
    with pytest.raises(ConfigError) as info:
        validate_document(doc, None)
    text = str(info.value)
    assert "config.json: process.cwd: expected an absolute path" in text
    assert "config.json: hostname: expected string" in text


def test_load_bundle_returns_frozen_model(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(BASE_CONFIG))
    spec, _ = load_bundle(str(tmp_path))
    assert isinstance(spec, Spec)
    assert spec.process is not None and spec.process.args == ("/bin/true",)
    with pytest.raises(AttributeError):
        spec.hostname = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.linux.sysctl["x"] = "y"  # type: ignore[index]


def test_loader_maps_fields() -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    doc["linux"]["timeOffsets"] = {"boottime": {"secs": 5, "nanosecs": 7}}
    doc["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]
    doc["hooks"] = {"createRuntime": [{"path": "/x", "args": ["x", "1"], "timeout": 3}]}
    spec = load_spec(doc)
    assert spec.linux.uid_mappings[0].host_id == 1000
    assert spec.linux.time_offsets[0].clock == "boottime"
    assert spec.linux.time_offsets[0].nanosecs == 7
    assert spec.process is not None and spec.process.rlimits[0].hard == 20
    assert spec.hooks.create_runtime[0].timeout == 3
    assert spec.linux.namespace("pid") is not None and spec.linux.namespace("user") is None


def _reference_configs() -> list[Path]:
    if not REFERENCE_CONFIGS.is_dir():
        return []
    return sorted(p for p in REFERENCE_CONFIGS.glob("*.json") if "process" not in p.name)


@pytest.mark.skipif(not REFERENCE_CONFIGS.is_dir(), reason="../shared/reference absent")
@pytest.mark.parametrize("path", _reference_configs(), ids=lambda p: p.name)
def test_reference_configs_validate(path: Path) -> None:
    """Every config written by a real engine passes schema and semantic checks (the
    rootfs check is skipped: their rootfs existed only while the engine ran)."""
    doc = json.loads(path.read_text())
    validate_document(doc, None)
    load_spec(doc)
