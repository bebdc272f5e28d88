"""Credentials: loading from env and files, permission checks, signing, and never showing the secret."""

from __future__ import annotations

import base64
import pickle
import sys

import pytest

from abidance.exchange.binance.credentials import ED25519, HMAC, Credentials, CredentialsError

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def private_file(path, text: str, mode: int = 0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


def test_hmac_signature_matches_binance_documented_example():
    payload = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
               "&recvWindow=5000&timestamp=1499827319559")
    creds = Credentials(KEY, SECRET)
    assert creds.key_type == HMAC
    assert creds.sign(payload) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_from_env_with_key_and_secret():
    creds = Credentials.from_env({"ABIDANCE_BINANCE_API_KEY": KEY, "ABIDANCE_BINANCE_API_SECRET": SECRET})
    assert creds.api_key == KEY and creds.sign("a=1") == Credentials(KEY, SECRET).sign("a=1")


def test_from_env_when_nothing_set_then_none_and_load_explains():
    assert Credentials.from_env({}) is None
    with pytest.raises(CredentialsError, match="ABIDANCE_BINANCE_API_KEY"):
        Credentials.load({})


@pytest.mark.parametrize("env,needle", [
    ({"ABIDANCE_BINANCE_API_KEY": KEY}, "ABIDANCE_BINANCE_API_SECRET"),
    ({"ABIDANCE_BINANCE_API_SECRET": SECRET}, "ABIDANCE_BINANCE_API_KEY"),
])
def test_from_env_when_half_configured_then_error_naming_the_missing_variable(env, needle):
    with pytest.raises(CredentialsError, match=needle) as info:
        Credentials.from_env(env)
    assert SECRET not in str(info.value)


def test_from_env_key_file_toml(tmp_path):
    path = private_file(tmp_path / "binance.toml", f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    creds = Credentials.from_env({"ABIDANCE_BINANCE_KEY_FILE": str(path)})
    assert creds.api_key == KEY and creds.sign("x") == Credentials(KEY, SECRET).sign("x")


def test_key_file_short_names_and_two_line_format(tmp_path):
    toml = private_file(tmp_path / "a.toml", f'key = "{KEY}"\nsecret = "{SECRET}"\n')
    lines = private_file(tmp_path / "b.txt", f"# binance\n{KEY}\n{SECRET}\n")
    assert Credentials.from_file(toml).sign("x") == Credentials.from_file(lines).sign("x") == \
        Credentials(KEY, SECRET).sign("x")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_key_file_accessible_by_group_or_others_is_refused_naming_file_and_fix(tmp_path, mode):
    path = private_file(tmp_path / "binance.toml", f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n', mode)
    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)
    text = str(info.value)
    assert str(path) in text and f"chmod 600 {path}" in text
    assert SECRET not in text and KEY not in text


@pytest.mark.parametrize("text,needle", [
    (f'api_key = "{KEY}"\n', "no api_secret"),
    (f'api_secret = "{SECRET}"\n', "no api_key"),
    (f'api_key = "{KEY}"\napi_secret = {SECRET}\n', "not valid TOML"),
    (f"{KEY}\n", "two lines"),
])
def test_malformed_key_file_is_refused_without_quoting_the_secret(tmp_path, text, needle):
    path = private_file(tmp_path / "k", text)
    with pytest.raises(CredentialsError, match=needle) as info:
        Credentials.from_file(path)
    assert SECRET not in str(info.value)


def test_missing_key_file_names_it(tmp_path):
    with pytest.raises(CredentialsError, match="nope.toml"):
        Credentials.from_file(tmp_path / "nope.toml")


def test_repr_and_str_never_show_the_secret_or_the_full_key():
    creds = Credentials(KEY, SECRET)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in text and KEY not in text
        assert KEY[:4] + "…" in text
    with pytest.raises(TypeError):
        pickle.dumps(creds)


def test_ed25519_sign_verify_round_trip_from_key_file(tmp_path):
    pytest.importorskip("cryptography", reason="Ed25519 keys need the optional 'cryptography' package")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (tmp_path / "ed25519.pem").write_bytes(pem)
    (tmp_path / "ed25519.pem").chmod(0o600)
    path = private_file(tmp_path / "binance.toml", f'api_key = "{KEY}"\nprivate_key_file = "ed25519.pem"\n')
    creds = Credentials.from_file(path)
    assert creds.key_type == ED25519
    payload = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&timestamp=1668481559918"
    signature = creds.sign(payload)
    key.public_key().verify(base64.b64decode(signature), payload.encode())    # raises when wrong
    env = Credentials.from_env({"ABIDANCE_BINANCE_API_KEY": KEY,
                                "ABIDANCE_BINANCE_PRIVATE_KEY_FILE": str(tmp_path / "ed25519.pem")})
    assert env.sign(payload) == signature       # Ed25519 signatures are deterministic
    assert "PRIVATE" not in repr(creds)


def test_ed25519_pem_readable_by_others_is_refused(tmp_path):
    pytest.importorskip("cryptography", reason="Ed25519 keys need the optional 'cryptography' package")
    pem = tmp_path / "ed25519.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\n")
    pem.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        Credentials.from_env({"ABIDANCE_BINANCE_API_KEY": KEY, "ABIDANCE_BINANCE_PRIVATE_KEY_FILE": str(pem)})


def test_ed25519_without_cryptography_gives_a_clear_error(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)      # import fails as if not installed
    pem = private_file(tmp_path / "ed25519.pem", "-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(CredentialsError, match="pip install cryptography"):
        Credentials.from_env({"ABIDANCE_BINANCE_API_KEY": KEY, "ABIDANCE_BINANCE_PRIVATE_KEY_FILE": str(pem)})
