"""The gate against independent implementations: PyJWT for tokens, passlib for Odoo key hashes."""
import secrets
import time

import jwt as pyjwt
import psycopg
import pytest
from passlib.context import CryptContext

ALGS = ["HS256", "HS384", "HS512"]
SECRET = "interop-secret-" + "x" * 64


@pytest.mark.parametrize("alg", ALGS)
def test_tokens_we_sign_verify_in_pyjwt(db, alg):
    claims = {"sub": "7", "scope": "read write", "exp": int(time.time()) + 60, "nested": {"a": [1, 2]}}
    token = db.execute("SELECT api_gateway.jwt_sign(%s::jsonb, %s, %s)", (psycopg.types.json.Jsonb(claims), SECRET, alg)).fetchone()[0]
    assert pyjwt.decode(token, SECRET, algorithms=[alg]) == claims


@pytest.mark.parametrize("alg", ALGS)
def test_tokens_pyjwt_signs_verify_in_sql(db, alg):
    claims = {"sub": "9", "iat": int(time.time()), "exp": int(time.time()) + 60}
    token = pyjwt.encode(claims, SECRET, algorithm=alg, headers={"kid": "k1"})
    got = db.execute("SELECT api_gateway.jwt_verify(%s, %s, %s)", (token, SECRET, alg)).fetchone()[0]
    assert got == claims


def test_pyjwt_token_with_another_algorithm_is_refused(db):
    token = pyjwt.encode({"sub": "1"}, SECRET, algorithm="HS512")
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as err:
        db.execute("SELECT api_gateway.jwt_verify(%s, %s, 'HS256')", (token, SECRET))
    assert "alg" in str(err.value)


def test_pyjwt_expired_token_is_refused(db):
    token = pyjwt.encode({"sub": "1", "exp": int(time.time()) - 120}, SECRET, algorithm="HS256")
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as err:
        db.execute("SELECT api_gateway.jwt_verify(%s, %s)", (token, SECRET))
    assert "expired" in str(err.value)


def test_issued_access_tokens_follow_rfc_9068_in_pyjwt(db, signing_secret):
    client_id, client_secret = db.execute("SELECT * FROM api_gateway.create_client('py', 2, '{read}')").fetchone()
    status, body = db.execute("SELECT * FROM api_gateway.issue_token(%s, %s)", (client_id, client_secret)).fetchone()
    assert status == 200
    header = pyjwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    kid = db.execute("SELECT jwt_kid FROM api_gateway.settings").fetchone()[0]
    assert header["kid"] == kid
    claims = pyjwt.decode(body["access_token"], signing_secret, algorithms=["HS256"])
    assert claims["client_id"] == client_id
    assert claims["sub"] == "2"
    assert claims["scope"] == "read"
    assert claims["exp"] - claims["iat"] == body["expires_in"]


@pytest.mark.parametrize("rounds", [1000, 6000, 29000])
def test_keys_hashed_by_passlib_verify_with_the_rounds_of_the_hash(db, rounds):
    ctx = CryptContext(["pbkdf2_sha512"], pbkdf2_sha512__rounds=rounds)
    key = secrets.token_hex(20)
    uid = db.execute("SELECT id FROM res_users WHERE active ORDER BY id LIMIT 1").fetchone()[0]
    db.execute(
        "INSERT INTO res_users_apikeys (name, user_id, scope, index, key) VALUES ('interop', %s, NULL, %s, %s)",
        (uid, key[:8], ctx.hash(key)),
    )
    assert db.execute("SELECT api_gateway.verify_api_key(%s)", (key,)).fetchone()[0] == uid
    wrong = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert db.execute("SELECT api_gateway.verify_api_key(%s)", (wrong,)).fetchone()[0] is None


def test_a_non_pbkdf2_hash_never_verifies(db):
    uid = db.execute("SELECT id FROM res_users WHERE active ORDER BY id LIMIT 1").fetchone()[0]
    key = secrets.token_hex(20)
    for bogus in [key, "$plaintext$" + key, "$pbkdf2-sha512$0$$", "$pbkdf2-sha256$6000$abc$def"]:
        db.execute(
            "INSERT INTO res_users_apikeys (name, user_id, index, key) VALUES ('bogus', %s, %s, %s)",
            (uid, key[:8], bogus),
        )
    assert db.execute("SELECT api_gateway.verify_api_key(%s)", (key,)).fetchone()[0] is None
