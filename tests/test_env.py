"""The commit a record names: git's where this folder is a checkout, else what the GPU check's caller passed."""

from __future__ import annotations

import subprocess

import pytest

from bench import env
from bench.records import Git

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_checkout(tmp_path, monkeypatch):
    """The project seen from a copy of its tree without .git, as a lent GPU machine runs it."""
    monkeypatch.setattr(env, "PROJECT_ROOT", tmp_path)
    monkeypatch.delenv(env.COMMIT_ENV, raising=False)
    monkeypatch.delenv(env.DIRTY_ENV, raising=False)
    return tmp_path


def test_a_checkout_names_its_own_commit_unless_the_caller_named_one(monkeypatch):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=env.PROJECT_ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("this copy of the project is not a git checkout")
    monkeypatch.delenv(env.COMMIT_ENV, raising=False)
    facts = env.git_commit()
    assert facts.commit == head.stdout.strip() and facts.dirty in (True, False)
    # a lent GPU machine's copy carried a stale .git (2026-11-28): the device command's BENCH_COMMIT wins
    monkeypatch.setenv(env.COMMIT_ENV, SHA)
    monkeypatch.setenv(env.DIRTY_ENV, "0")
    assert env.git_commit() == Git(SHA, False)
    monkeypatch.setenv(env.COMMIT_ENV, "not a commit")  # not a hash: the checkout's own
    assert env.git_commit().commit == head.stdout.strip()


def test_without_git_the_commit_comes_from_the_environment(no_checkout, monkeypatch):
    monkeypatch.setenv(env.COMMIT_ENV, SHA.upper())
    monkeypatch.setenv(env.DIRTY_ENV, "1")
    assert env.git_commit() == Git(SHA, True)
    monkeypatch.setenv(env.DIRTY_ENV, "0")
    assert env.git_commit() == Git(SHA, False)


def test_without_git_or_environment_the_commit_is_null(no_checkout):
    assert env.git_commit() == Git(None, None)


@pytest.mark.parametrize("commit,dirty", [("not a commit", "1"), ("", "0"), ("abc", "1"), (SHA + "\nx", "0")])
def test_values_that_are_not_a_hash_are_not_recorded(no_checkout, monkeypatch, commit, dirty):
    monkeypatch.setenv(env.COMMIT_ENV, commit)
    monkeypatch.setenv(env.DIRTY_ENV, dirty)
    assert env.git_commit() == Git(None, None)


def test_a_dirty_flag_other_than_1_or_0_is_unknown(no_checkout, monkeypatch):
    monkeypatch.setenv(env.COMMIT_ENV, SHA)
    monkeypatch.setenv(env.DIRTY_ENV, "maybe")
    assert env.git_commit() == Git(SHA, None)


def test_a_tree_inside_another_repository_does_not_take_that_repository_s_commit(no_checkout, monkeypatch):
    """A copy of the tree unpacked inside some other git repository: its HEAD is not this project's commit."""
    outer = no_checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    if subprocess.run(["git", "init", "-q", str(outer)], capture_output=True).returncode != 0:
        pytest.skip("git cannot make a repository here")
    subprocess.run(git + ["-C", str(outer), "commit", "-q", "--allow-empty", "-m", "other"], check=True)
    tree = outer / "copy"
    tree.mkdir()
    monkeypatch.setattr(env, "PROJECT_ROOT", tree.resolve())
    assert env.git_commit() == Git(None, None)
    monkeypatch.setenv(env.COMMIT_ENV, SHA)
    assert env.git_commit().commit == SHA
