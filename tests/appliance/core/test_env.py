from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from appliance.dburl import parse_database_url
from appliance.env import env_bool, env_int, env_list, env_secret, env_str


def test_env_str_and_list():
    assert env_str("A", "d", environ={}) == "d"
    assert env_str("A", environ={"A": "x"}) == "x"
    assert env_list("L", ["a"], environ={}) == ["a"]
    assert env_list("L", environ={"L": " a, b ,,c "}) == ["a", "b", "c"]


@pytest.mark.parametrize("raw,value", [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False),
                                       ("", False)])
def test_env_bool_accepts(raw, value):
    assert env_bool("B", not value, environ={"B": raw}) is value


def test_env_bool_rejects_garbage_and_defaults():
    assert env_bool("B", True, environ={}) is True
    with pytest.raises(ImproperlyConfigured, match="B must be a boolean"):
        env_bool("B", environ={"B": "maybe"})


def test_env_int_bounds():
    assert env_int("I", 5, environ={}) == 5
    assert env_int("I", 5, environ={"I": " 7 "}) == 7
    with pytest.raises(ImproperlyConfigured, match="integer"):
        env_int("I", 5, environ={"I": "seven"})
    with pytest.raises(ImproperlyConfigured, match=">= 1"):
        env_int("I", 5, minimum=1, environ={"I": "0"})
    with pytest.raises(ImproperlyConfigured, match="<= 10"):
        env_int("I", 5, maximum=10, environ={"I": "11"})


def test_env_secret_from_value_or_file(tmp_path: Path):
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    assert env_secret("S", environ={"S": "direct"}) == "direct"
    assert env_secret("S", environ={"S_FILE": str(secret)}) == "from-file"
    assert env_secret("S", "dflt", environ={}) == "dflt"
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env_secret("S", environ={"S": "a", "S_FILE": str(secret)})
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_secret("S", environ={"S_FILE": str(tmp_path / "missing")})


def test_database_url_parsing(tmp_path: Path):
    default = parse_database_url("", sqlite_path=tmp_path / "db.sqlite3")
    assert default == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    pg = parse_database_url("postgres://app:p%40ss@db.local:5433/appliance?sslmode=require", sqlite_path=tmp_path)
    assert pg == {"ENGINE": "django.db.backends.postgresql", "NAME": "appliance", "USER": "app",
                  "PASSWORD": "p@ss", "HOST": "db.local", "PORT": "5433", "OPTIONS": {"sslmode": "require"}}
    with pytest.raises(ImproperlyConfigured, match="not supported"):
        parse_database_url("mysql://x/y", sqlite_path=tmp_path)
    with pytest.raises(ImproperlyConfigured, match="must name a database"):
        parse_database_url("postgres://host/", sqlite_path=tmp_path)
