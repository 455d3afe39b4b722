"""set_image's registry allowlist (execution.image_registries), as pure functions: which registry an image
reference resolves to, and whether a configured prefix admits it. The executor applies it before every
set_image, dry-run included (tests/execution/test_actions_workloads.py::test_set_image)."""

from __future__ import annotations

import pytest

from kubernaut.config import load_config
from kubernaut.execution.actions.set_image import image_repository, registry_allowed


@pytest.mark.parametrize(("image", "repository"), [
    ("nginx", "docker.io/library/nginx"),
    ("nginx:1.26", "docker.io/library/nginx"),
    ("evil/nginx:1.26", "docker.io/evil/nginx"),
    ("registry.local/web:1.0", "registry.local/web"),
    ("Registry.Local:5000/team/app@sha256:" + "0" * 64, "registry.local:5000/team/app"),
    ("localhost/app:1", "localhost/app"),
])
def test_image_repository_resolves_the_registry_as_a_runtime_does(image: str, repository: str) -> None:
    assert image_repository(image) == repository


@pytest.mark.parametrize(("image", "registries", "allowed"), [
    ("registry.example.com/payments/api:1.4.2", ["registry.example.com/payments"], True),
    ("registry.example.com/payments/api:1.4.2", ["registry.example.com"], True),
    ("registry.example.com/paymentsx/api:1", ["registry.example.com/payments"], False),  # whole components
    ("registry.example.com/pay/api:1", ["registry.example.com/payments"], False),
    ("nginx:1.26", ["docker.io/library"], True),
    ("evil/nginx:1.26", ["docker.io/library"], False),  # a Docker Hub user is not the official library
    ("evil.io/registry.example.com/api:1", ["registry.example.com"], False),  # the host is evil.io
    ("registry.example.com:5000/api:1", ["registry.example.com"], False),  # another port, another registry
    ("registry.example.com/api:1", [], False),  # nothing configured: refused (fail closed)
])
def test_registry_allowed(image: str, registries: list[str], allowed: bool) -> None:
    assert registry_allowed(image, registries) is allowed


@pytest.mark.parametrize("entry", ["", "*", "registry.example.com/api:1.0", "https://registry.example.com"])
def test_an_entry_that_would_admit_anything_or_nothing_sensible_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ValueError, match="image_registries"):
        load_config({"execution": {"image_registries": [entry]}})
