"""Configuration (app/config.py): defaults, environment overrides, and the start-up checks."""

from __future__ import annotations

import ast
import operator
import pathlib
import re
import stat

import pytest

from app import create_app, devserver
from app.config import ConfigError, load_config, validate
from tests.support import ROOT

INT_VARIABLES = [
    "MAX_UPLOAD_MB",
    "OCR_PAGE_TIME_LIMIT",
    "OCR_STALL_TIMEOUT",
    "OCR_JOB_TTL",
    "RENDER_DPI",
    "RENDER_MAX_PIXELS",
    "WEBHOOK_TIMEOUT",
    "EXPORT_RETENTION_HOURS",
    "JOB_PAGE_RETENTION_DAYS",
]


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def config_with(data_dir, **env) -> dict:
    return load_config({"DATA_DIR": str(data_dir), **env})


#: docs/configuration.md: its table of variables is what these tests hold the code to.
DOC = ROOT / "docs" / "configuration.md"
#: The key a variable sets, where it is not the variable's own name.
KEY_OF = {"DATABASE_URL": "SQLALCHEMY_DATABASE_URI", "MAX_UPLOAD_MB": "MAX_CONTENT_LENGTH"}
#: From the value the doc gives to the value of the key, where the key holds another form.
AS_KEY = {
    "DATA_DIR": lambda value: str(pathlib.Path(value).resolve()),
    "MAX_UPLOAD_MB": lambda mb: mb * 1024 * 1024,
    "SESSION_COOKIE_SECURE": lambda value: value == "1",
    "WEBHOOK_ALLOW_PRIVATE": lambda value: value == "1",
}
#: Keys with a fixed value, set from no variable (the doc's "Fixed settings" paragraph, and
#: CSRF tokens that do not expire while a page stays open).
FIXED = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
}


def documented_defaults() -> dict[str, str]:
    """Variable -> its default as the doc's table writes it."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \| .+ \|$", DOC.read_text(), re.M)
    assert rows, f"no table of variables in {DOC}"
    return dict(rows)


def arithmetic(expression: str) -> int:
    """The value of a default such as `2 * 120 + 60`: numbers, + - * and brackets only."""
    operators = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            return operators[type(node.op)](value(node.left), value(node.right))
        raise AssertionError(f"a documented default the test cannot read: {expression!r}")

    return value(ast.parse(expression, mode="eval").body)


def documented_value(name: str, defaults: dict[str, str]):
    """What the doc says `name` is when unset: `unset` is None; `$OTHER` and OTHER stand for
    that variable's documented value, in the form its key holds (DATA_DIR made absolute); a
    whole number is an int; a file the value is "generated once into" is read."""
    text = defaults[name]
    if text == "unset":
        return None
    literal = re.match(r"(?:generated once into )?`([^`]+)`", text)
    assert literal, f"{name}: no `value` in its documented default {text!r}"
    value = literal.group(1)
    others = sorted(set(defaults) - {name}, key=len, reverse=True)
    for other in others:
        if f"${other}" in value:
            value = value.replace(f"${other}", str(as_key(other, defaults)))
    if "×" in value:
        for other in others:
            value = re.sub(rf"\b{other}\b", str(as_key(other, defaults)), value)
        return arithmetic(value.replace("×", "*"))
    if text.startswith("generated once into"):
        return pathlib.Path(value).read_text()
    return int(value) if value.isdigit() else value


def as_key(name: str, defaults: dict[str, str]):
    """The documented default of `name` in the form its key holds."""
    return AS_KEY.get(name, lambda value: value)(documented_value(name, defaults))


def test_defaults_are_the_documented_ones(tmp_path, monkeypatch):
    """With no variable set, each key has the default docs/configuration.md's table gives for
    its variable (PORT: `make run`'s port, app/devserver.py)."""
    monkeypatch.chdir(tmp_path)  # the documented DATA_DIR, ./data, is under the working dir
    config = load_config({})
    defaults = documented_defaults()
    actual = {KEY_OF.get(name, name): config.get(KEY_OF.get(name, name)) for name in defaults}
    actual["PORT"] = devserver.DEFAULT_PORT
    expected = {KEY_OF.get(name, name): as_key(name, defaults) for name in defaults}
    assert actual == expected
    mode = re.search(r"\(mode (0[0-7]{3})\)", defaults["SECRET_KEY"])
    secret_file = tmp_path / "data" / "secret_key"
    assert mode and stat.S_IMODE(secret_file.stat().st_mode) == int(mode.group(1), 8)
    validate(config)


def test_every_variable_the_code_reads_is_documented():
    """The variables app/config.py reads, plus `make run`'s PORT, are the doc's rows."""
    source = (ROOT / "app" / "config.py").read_text()
    read = set(re.findall(r'env(?:\.get\(|\[|, )"([A-Z_]+)"', source))
    assert read, "found no variable read in app/config.py"
    assert read | {"PORT"} == set(documented_defaults())


def test_every_key_comes_from_a_documented_variable_or_is_fixed(data_dir):
    """No key is set from nowhere: each comes from a documented variable or is one of the
    fixed settings, with its fixed value."""
    config = config_with(data_dir)
    from_variables = {KEY_OF.get(name, name) for name in documented_defaults()} - {"PORT"}
    assert set(config) == from_variables | set(FIXED)
    assert {key: config[key] for key in FIXED} == FIXED


def test_data_dir_defaults_to_data_under_the_working_directory(tmp_path, monkeypatch):
    """Without DATA_DIR, ./data (made absolute) holds the data, the database and the key."""
    monkeypatch.chdir(tmp_path)
    config = load_config({})
    assert config["DATA_DIR"] == str(tmp_path / "data")
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'data' / 'proofing.db'}"
    assert (tmp_path / "data" / "secret_key").is_file()


def test_environment_overrides_every_setting(data_dir):
    """Each documented variable sets its key; MAX_UPLOAD_MB is converted to bytes."""
    config = config_with(
        data_dir,
        DATABASE_URL="postgresql+psycopg://u:p@db/proofing",
        REDIS_URL="redis://:pw@redis.example:6380/2",
        CELERY_BROKER_URL="redis://broker.example:6379/0",
        CELERY_RESULT_BACKEND="redis://backend.example:6379/0",
        SECRET_KEY="from-the-environment",
        MAX_UPLOAD_MB="3",
        OCR_PAGE_TIME_LIMIT="30",
        OCR_STALL_TIMEOUT="100",
        OCR_JOB_TTL="1000",
        RENDER_DPI="200",
        RENDER_MAX_PIXELS="1000000",
        GOOGLE_APPLICATION_CREDENTIALS="/etc/key.json",
        GOOGLE_VISION_ENDPOINT="http://127.0.0.1:9999",
        TESSERACT_CMD="/opt/tesseract",
        SESSION_COOKIE_SECURE="1",
    )
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db/proofing"
    assert config["REDIS_URL"] == "redis://:pw@redis.example:6380/2"
    assert config["CELERY_BROKER_URL"] == "redis://broker.example:6379/0"
    assert config["CELERY_RESULT_BACKEND"] == "redis://backend.example:6379/0"
    assert config["SECRET_KEY"] == "from-the-environment"
    assert config["MAX_CONTENT_LENGTH"] == 3 * 1024 * 1024
    assert config["OCR_PAGE_TIME_LIMIT"] == 30
    assert config["OCR_STALL_TIMEOUT"] == 100
    assert config["OCR_JOB_TTL"] == 1000
    assert config["RENDER_DPI"] == 200
    assert config["RENDER_MAX_PIXELS"] == 1_000_000
    assert config["GOOGLE_APPLICATION_CREDENTIALS"] == "/etc/key.json"
    assert config["GOOGLE_VISION_ENDPOINT"] == "http://127.0.0.1:9999"
    assert config["TESSERACT_CMD"] == "/opt/tesseract"
    assert config["SESSION_COOKIE_SECURE"] is True
    validate(config)


def test_celery_urls_follow_redis_url(data_dir):
    """Broker and result backend default to REDIS_URL, so one variable moves all three."""
    config = config_with(data_dir, REDIS_URL="redis://elsewhere:6390/3")
    assert config["CELERY_BROKER_URL"] == "redis://elsewhere:6390/3"
    assert config["CELERY_RESULT_BACKEND"] == "redis://elsewhere:6390/3"


def test_stall_timeout_default_follows_page_time_limit(data_dir):
    """OCR_STALL_TIMEOUT defaults to twice the page time limit plus a minute."""
    assert config_with(data_dir, OCR_PAGE_TIME_LIMIT="10")["OCR_STALL_TIMEOUT"] == 80


@pytest.mark.parametrize("name", INT_VARIABLES)
def test_empty_integer_variable_means_default(data_dir, name):
    """An empty value (`FOO=` in an env file) is the default, not an error."""
    assert config_with(data_dir, **{name: ""}) == config_with(data_dir)


@pytest.mark.parametrize("name", INT_VARIABLES)
@pytest.mark.parametrize("raw", ["abc", "1.5", "12MB"])
def test_invalid_integer_raises_config_error_naming_the_variable(data_dir, name, raw):
    """A value that is not a whole number stops start-up with the variable's name and value."""
    with pytest.raises(ConfigError) as caught:
        config_with(data_dir, **{name: raw})
    assert name in str(caught.value)
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"OCR_PAGE_TIME_LIMIT": 4, "OCR_STALL_TIMEOUT": 100}, "OCR_PAGE_TIME_LIMIT"),
        ({"OCR_PAGE_TIME_LIMIT": 60, "OCR_STALL_TIMEOUT": 60}, "OCR_STALL_TIMEOUT"),
        ({"OCR_PAGE_TIME_LIMIT": 60, "OCR_STALL_TIMEOUT": 30}, "OCR_STALL_TIMEOUT"),
        ({"OCR_STALL_TIMEOUT": 500, "OCR_JOB_TTL": 500}, "OCR_JOB_TTL"),
        ({"OCR_STALL_TIMEOUT": 500, "OCR_JOB_TTL": 100}, "OCR_JOB_TTL"),
        ({"REDIS_URL": "http://127.0.0.1:6379/0"}, "REDIS_URL"),
        ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL"),
    ],
)
def test_validate_refuses_inconsistent_settings(data_dir, overrides, words):
    """validate() names the setting that makes the others impossible to honour."""
    config = {**config_with(data_dir), **overrides}
    with pytest.raises(ConfigError, match=words):
        validate(config)


@pytest.mark.parametrize("redis_url", ["redis://h:1/0", "rediss://h:1/0", "unix:///run/redis.sock"])
def test_validate_accepts_every_redis_scheme(data_dir, redis_url):
    """redis://, rediss:// (TLS) and unix:// sockets are all valid REDIS_URLs."""
    validate({**config_with(data_dir), "REDIS_URL": redis_url})


@pytest.mark.parametrize("overrides", [{"RENDER_DPI": 0}, {"RENDER_MAX_PIXELS": 0}])
def test_validate_refuses_render_limits_that_cannot_render(data_dir, overrides):
    """A zero rendering resolution or pixel budget is refused at start-up."""
    with pytest.raises(ConfigError, match=next(iter(overrides))):
        validate({**config_with(data_dir), **overrides})


def test_create_app_fails_fast_on_an_invalid_setting(tmp_path, monkeypatch):
    """create_app validates before doing anything: an inconsistent config never starts."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "env-data"))
    with pytest.raises(ConfigError, match="OCR_STALL_TIMEOUT"):
        create_app(
            {
                "DATA_DIR": str(tmp_path / "data"),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                "OCR_PAGE_TIME_LIMIT": 60,
                "OCR_STALL_TIMEOUT": 10,
            }
        )
    assert not (tmp_path / "data").exists()


def test_secret_key_is_generated_once_with_mode_0600_and_reused(data_dir):
    """Without SECRET_KEY a random key is written to DATA_DIR/secret_key (0600) and read back."""
    first = config_with(data_dir)["SECRET_KEY"]
    path = data_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert path.read_text() == first
    assert config_with(data_dir)["SECRET_KEY"] == first


def test_secret_keys_differ_between_data_directories(tmp_path):
    """The generated key is random, not a constant every installation shares."""
    assert config_with(tmp_path / "a")["SECRET_KEY"] != config_with(tmp_path / "b")["SECRET_KEY"]


def test_secret_key_from_environment_writes_no_file(data_dir):
    """SECRET_KEY in the environment wins and nothing is written to the data directory."""
    assert config_with(data_dir, SECRET_KEY="explicit")["SECRET_KEY"] == "explicit"
    assert not (data_dir / "secret_key").exists()


def test_secret_key_race_reads_the_key_the_other_process_wrote(data_dir, monkeypatch):
    """If another process writes the key between our check and our write, we use its key."""
    data_dir.mkdir(parents=True)
    path = data_dir / "secret_key"
    real_exists = pathlib.Path.exists

    def exists_before_the_other_process_wrote(self, *args, **kwargs):
        if self == path:
            path.write_text("written-by-the-other-process")
            path.chmod(0o600)
            return False
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "exists", exists_before_the_other_process_wrote)
    assert config_with(data_dir)["SECRET_KEY"] == "written-by-the-other-process"
