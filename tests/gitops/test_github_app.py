"""GitHub App credentials (kubernaut/gitops/github_app.py) against the local GitHub peer, which verifies the App's
JWT with the App's public key (RS256) and issues expiring installation tokens that its repository endpoints
check: the exchange, the cache until shortly before expires_at, a new token after expiry and after a 401; a
forged, expired or foreign JWT refused; a missing key refused before anything is sent."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubernaut.config.gitops import GitHubAppConfig, GitOpsConfig, RepositoryConfig
from kubernaut.gitops import proposal
from kubernaut.gitops.forge import ForgeError, GitHub
from kubernaut.gitops.github_app import InstallationTokens, app_jwt
from tests.support.forge_peer import ForgePeer, GitHubApp

PROJECT = "org/deploy"


def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return rsa_pair()


@pytest.fixture
def peer(tmp_path: Path, keys: tuple[str, str]):  # type: ignore[no-untyped-def]
    made = ForgePeer(tmp_path / "unused.git", None, PROJECT, app=GitHubApp(app_id="123456", public_key=keys[1]))
    yield made
    made.stop()


def app_config(tmp_path: Path, private: str, **kwargs: object) -> GitHubAppConfig:
    key = tmp_path / "app.pem"
    key.write_text(private)
    return GitHubAppConfig.model_validate({"app_id": "123456", "private_key_file": str(key), **kwargs})


def test_the_installation_token_is_exchanged_cached_and_renewed_on_expiry_and_on_401(
        peer: ForgePeer, keys: tuple[str, str], tmp_path: Path) -> None:
    now = [time.time()]
    tokens = InstallationTokens(app_config(tmp_path, keys[0]), peer.url, PROJECT, clock=lambda: now[0])
    forge = GitHub(peer.url, PROJECT, tokens)
    forge.check()
    forge.check()
    assert tokens.exchanges == 1  # cached: one exchange for both calls
    # The installation was looked up for the repository (no installation_id configured), with the App's JWT.
    assert [p for _, p in peer.requests[:2]] == [f"/repos/{PROJECT}/installation", "/app/installations/4242/"
                                                 "access_tokens"]
    first = tokens.token()
    assert first in peer.installation_tokens and peer.accepts(first)

    now[0] += 3600 - 200  # within refresh_before_s (300) of expires_at: renewed before use
    forge.check()
    assert tokens.exchanges == 2
    now[0] = time.time()  # back to the peer's clock: the new token has its whole hour ahead
    assert tokens.token() != first and tokens.exchanges == 2

    peer.expire_tokens()  # GitHub's side: expired (or revoked) early; the client still thinks it valid
    forge.check()  # 401 → a new token → the call succeeds
    assert tokens.exchanges == 3 and peer.refused_tokens == 1
    # Every repository call carried an installation token: the peer takes no other (its static token is None).
    assert peer.accepts(tokens.token())


def test_a_forged_key_is_refused_and_the_forge_call_fails_closed(peer: ForgePeer, tmp_path: Path) -> None:
    forged, _ = rsa_pair()
    tokens = InstallationTokens(app_config(tmp_path, forged, installation_id=4242), peer.url, PROJECT)
    with pytest.raises(ForgeError) as refused:
        GitHub(peer.url, PROJECT, tokens).check()
    assert refused.value.auth and "installation token was refused" in str(refused.value)
    assert peer.jwt_refusals and "Signature" in peer.jwt_refusals[0]
    assert not peer.installation_tokens and (("GET", f"/repos/{PROJECT}") not in peer.requests)


def test_the_peer_refuses_expired_foreign_and_unsigned_jwts(peer: ForgePeer, keys: tuple[str, str],
                                                           tmp_path: Path) -> None:
    app = app_config(tmp_path, keys[0])
    url = f"{peer.url}/app/installations/4242/access_tokens"
    expired = app_jwt(app, keys[0], now=time.time() - 3600)
    foreign = jwt.encode({"iat": int(time.time()) - 60, "exp": int(time.time()) + 300, "iss": "999"}, keys[0],
                         algorithm="RS256")
    unsigned = jwt.encode({"iat": int(time.time()) - 60, "exp": int(time.time()) + 300, "iss": "123456"}, None,
                          algorithm="none")
    too_long = jwt.encode({"iat": int(time.time()) - 60, "exp": int(time.time()) + 3600, "iss": "123456"}, keys[0],
                          algorithm="RS256")
    for token in (expired, foreign, unsigned, too_long):
        assert httpx.post(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert len(peer.jwt_refusals) == 4 and "Expired" in peer.jwt_refusals[0]
    good = httpx.post(url, headers={"Authorization": f"Bearer {app_jwt(app, keys[0])}"})
    assert good.status_code == 201 and good.json()["token"] in peer.installation_tokens


def test_a_missing_or_unreadable_key_is_refused_before_any_request(peer: ForgePeer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNAUT_TEST_APP_KEY", raising=False)
    cases = [GitHubAppConfig(app_id="123456", private_key_file=tmp_path / "absent.pem"),
             GitHubAppConfig(app_id="123456", private_key_env="KUBERNAUT_TEST_APP_KEY"),
             app_config(tmp_path, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")]
    for app in cases:
        repo = RepositoryConfig(url="https://github.com/org/deploy", forge="github", api_url=peer.url,
                                project=PROJECT, github_app=app)
        with pytest.raises(ForgeError) as refused:
            proposal.state(GitOpsConfig(repositories=[repo]), repo, 1)
        assert refused.value.auth and "refusing to propose" in str(refused.value), refused.value
    assert peer.requests == []


def test_the_key_never_goes_in_the_configuration_file() -> None:
    with pytest.raises(ValueError, match="private_key"):
        GitHubAppConfig.model_validate({"app_id": "1", "private_key": "-----BEGIN RSA PRIVATE KEY-----"})
    with pytest.raises(ValueError, match="github_app"):
        RepositoryConfig.model_validate({"url": "u", "forge": "gitlab", "api_url": "a", "project": "p",
                                         "github_app": {"app_id": "1", "private_key_env": "K"}})
    with pytest.raises(ValueError, match="not both"):
        RepositoryConfig.model_validate({"url": "u", "forge": "github", "api_url": "a", "project": "p",
                                         "token": "t", "github_app": {"app_id": "1", "private_key_env": "K"}})
