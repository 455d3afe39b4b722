"""Fixtures of the GitOps tests: a real ``git daemon`` (slow: tests/plugins/components.py SLOW_FIXTURES) and the
Argo CD / Flux CRDs on the test control plane (installed for the module, removed after)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from kubernaut.cluster.api import ClusterAPI
from tests.support.git_server import GitServer, start_git_daemon
from tests.support.gitops_cluster import install_crds, remove_crds


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = start_git_daemon(tmp_path_factory.mktemp("git"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gitops_crds(kube_api_client: client.ApiClient) -> Iterator[ClusterAPI]:
    api = ClusterAPI(kube_api_client)
    created = install_crds(api)
    yield api
    remove_crds(api, created)
