"""The rule cache as an attacker would try it: planted pickles, forged or altered entries, shared
and loose directories, links. None may run code or change what a rule detects."""

import os
import pickle
import stat

import pytest

from trailhound.rules import cache
from trailhound.rules.check import check_rule
from trailhound.rules.loader import rule_from_toml

from test_rule_cache import RULE


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", str(root))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    cache._key.cache_clear()
    cache._warned.clear()
    yield root
    cache._key.cache_clear()


def _query_key(rule):
    return (rule.language, rule.query, rule.event_category_override)


class _Boom:
    """Unpickling this runs a command that leaves a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_is_never_run_and_the_rule_is_parsed_afresh(cache_dir, tmp_path):
    rule = rule_from_toml(RULE)
    check_rule(rule)  # makes the directory, its key and the entry
    path, _ = cache._path(_query_key(rule))
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps((_query_key(rule), _Boom(marker))))
    result = check_rule(rule)
    assert not marker.exists()
    assert result.status == "ok" and "ssh" in str(result.query)


def test_an_entry_forged_without_the_key_or_altered_is_ignored(cache_dir):
    from trailhound.lang import ir

    rule = rule_from_toml(RULE)
    real = check_rule(rule).query
    path, secret = cache._path(_query_key(rule))
    never = ir.EventQuery(ir.EventFilter("process", ir.Literal(False)))  # a rule that never fires
    body = cache.dumps([_query_key(rule), (never, None, "ok")])
    path.write_bytes(b"0" * 64 + b"\n" + body)  # forged: no key
    assert check_rule(rule).query == real
    tampered = path.read_bytes()  # the rebuilt, signed entry, then its body swapped
    mac = tampered.partition(b"\n")[0]
    path.write_bytes(mac + b"\n" + body)
    assert check_rule(rule).query == real
    # the same body signed with the right key is taken: the test above fails for the right reason
    path.write_bytes(cache._mac(secret, body) + b"\n" + body)
    assert check_rule(rule).query == never


def test_only_the_ir_and_registered_dataclasses_decode():
    assert cache.loads(cache.dumps({"a": (1, 2**70, float("inf"))})) == {"a": (1, 2**70, float("inf"))}
    with pytest.raises(ValueError, match="not allowed"):
        cache.loads(b'{"$dc": "os.system", "f": {"command": "id"}}')
    with pytest.raises(TypeError):
        cache.dumps(object())


def test_a_directory_others_can_write_is_not_used(cache_dir, caplog):
    cache_dir.mkdir(mode=0o700)
    cache_dir.chmod(0o777)
    rule = rule_from_toml(RULE)
    assert check_rule(rule).status == "ok"
    assert not any(cache_dir.iterdir())  # nothing written, nothing read
    assert "others can write to it" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_a_directory_of_another_user_is_not_used_by_root(cache_dir, caplog):
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 65534, 65534)
    assert check_rule(rule_from_toml(RULE)).status == "ok"
    assert not any(cache_dir.iterdir())
    assert "belongs to uid 65534" in caplog.text


def test_entries_others_can_write_and_links_are_ignored(cache_dir, tmp_path):
    rule = rule_from_toml(RULE)
    check_rule(rule)
    key = _query_key(rule)
    path, _ = cache._path(key)
    assert cache.get(key) is not None
    path.chmod(0o666)
    assert cache.get(key) is None
    path.chmod(0o600)
    elsewhere = tmp_path / "elsewhere"
    os.replace(path, elsewhere)
    path.symlink_to(elsewhere)
    assert cache.get(key) is None


def test_a_readable_key_disables_the_cache(cache_dir, caplog):
    check_rule(rule_from_toml(RULE))
    key_file = cache.key_file()
    assert not key_file.is_relative_to(cache_dir)  # never inside a cache that can be restored from elsewhere
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(0o644)
    cache._key.cache_clear()
    assert cache.get(_query_key(rule_from_toml(RULE))) is None
    assert "others can read the cache key" in caplog.text


def test_a_whole_cache_restored_from_elsewhere_is_rebuilt(cache_dir, tmp_path, monkeypatch):
    """A CI cache brings entries signed by another key (its own, in the same tarball): they are
    ignored and rebuilt, and the rule finds what its real query finds."""
    import shutil
    import tarfile

    from trailhound.lang import ir

    rule = rule_from_toml(RULE)
    real = check_rule(rule).query
    # elsewhere: another user's state directory (another key) builds a cache with a forged entry
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere-state"))
    cache._key.cache_clear()
    check_rule(rule)
    path, secret = cache._path(_query_key(rule))
    never = ir.EventQuery(ir.EventFilter("process", ir.Literal(False)))
    body = cache.dumps([_query_key(rule), (never, None, "ok")])
    path.write_bytes(cache._mac(secret, body) + b"\n" + body)
    shutil.copy(cache.key_file(), cache_dir / "key")  # as if the key were shipped along
    with tarfile.open(tmp_path / "ci-cache.tar", "w") as tar:
        tar.add(cache_dir, arcname="cache")
    shutil.rmtree(cache_dir)
    with tarfile.open(tmp_path / "ci-cache.tar") as tar:
        tar.extractall(tmp_path, filter="tar")
    # here: this user's own key
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    cache._key.cache_clear()
    assert check_rule(rule).query == real


def test_a_fifo_where_a_file_should_be_does_not_block(cache_dir):
    rule = rule_from_toml(RULE)
    check_rule(rule)
    path, _ = cache._path(_query_key(rule))
    path.unlink()
    os.mkfifo(path, 0o600)
    assert check_rule(rule).status == "ok"  # would block for ever on open() without O_NONBLOCK
    key = cache.key_file()
    key.unlink()
    os.mkfifo(key, 0o600)
    cache._key.cache_clear()
    assert cache.get(_query_key(rule)) is None and check_rule(rule).status == "ok"


def test_a_directory_where_an_entry_or_the_key_should_be_is_skipped(cache_dir):
    """fdopen() of a directory raised before the regular-file check: every rule failed to load."""
    rule = rule_from_toml(RULE)
    check_rule(rule)
    path, _ = cache._path(_query_key(rule))
    path.unlink()
    path.mkdir(mode=0o700)
    assert check_rule(rule).status == "ok"
    key = cache.key_file()
    key.unlink()
    key.mkdir(mode=0o700)
    cache._key.cache_clear()
    assert cache.get(_query_key(rule)) is None and check_rule(rule).status == "ok"
