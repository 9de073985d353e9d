"""Hostile links inside an output root: the one safe-path writer refuses to write through them.

Each test plants its own symbolic link in ``tmp_path`` and checks that the
outside file or folder is untouched and the refusal is one line naming the link.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fly64_manifest import (
    UnsafePathError,
    atomic_write,
    ensure_dir,
    inside_root,
    locked,
    open_append,
    refuse_foreign_root,
    refuse_output_in_input,
    remove_tree,
    write_json,
)


@pytest.fixture
def outside(tmp_path):
    """A folder outside the root holding a file that must survive."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    return folder


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


def _one_line(message: str, *needles: str) -> None:
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message


def test_a_folder_link_below_the_root_is_refused_and_nothing_is_written(root, outside):
    (root / "job").symlink_to(outside)
    with pytest.raises(UnsafePathError) as info:
        ensure_dir(root / "job" / "checkpoints", root)
    _one_line(str(info.value), str(root / "job"), "symbolic link")
    with pytest.raises(UnsafePathError):
        write_json(root / "job" / "attempts.json", {"a": 1}, root=root)
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]


def test_a_path_escaping_the_root_is_refused(root, outside):
    with pytest.raises(UnsafePathError, match="outside its root"):
        inside_root(root / ".." / "outside" / "x", root)
    with pytest.raises(UnsafePathError, match="outside its root"):
        ensure_dir("../outside/new", root)
    assert not (outside / "new").exists()


def test_the_root_itself_may_be_a_link(tmp_path, outside):
    # A study whose phase folders point at scratch storage is legitimate.
    link = tmp_path / "scratch_link"
    link.symlink_to(outside)
    made = ensure_dir(link / "dose_1000", link)
    assert made.is_dir() and (outside / "dose_1000").is_dir()


def test_remove_tree_refuses_a_link_and_keeps_the_outside_folder(root, outside):
    (root / "dose_1000").symlink_to(outside)
    with pytest.raises(UnsafePathError) as info:
        remove_tree(root / "dose_1000", root)
    _one_line(str(info.value), str(root / "dose_1000"))
    assert (outside / "thesis.txt").read_text() == "years of work"
    real = root / "dose_2000" / "dense"
    real.mkdir(parents=True)
    remove_tree(root / "dose_2000", root)
    assert not (root / "dose_2000").exists()
    with pytest.raises(UnsafePathError, match="root itself"):
        remove_tree(root, root)


def test_a_lock_file_link_is_refused_and_its_target_not_truncated(root, outside):
    target = outside / "thesis.txt"
    (root / ".lock").symlink_to(target)
    with pytest.raises(UnsafePathError) as info, locked(root / ".lock"):
        pass
    _one_line(str(info.value), str(root / ".lock"), "symbolic link")
    assert target.read_text() == "years of work"


def test_a_lock_file_is_never_truncated(root):
    lock = root / ".lock"
    lock.write_text("pid 42\n")
    with locked(lock):
        pass
    assert lock.read_text() == "pid 42\n"


def test_a_busy_lock_says_so_without_waiting(root):
    with locked(root / ".lock"), pytest.raises(RuntimeError, match="busy job"), \
            locked(root / ".lock", blocking=False, busy="busy job"):
        pass


def test_a_log_link_is_refused_and_its_target_not_appended_to(root, outside):
    target = outside / "thesis.txt"
    (root / "train.log").symlink_to(target)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_append(root / "train.log")
    assert target.read_text() == "years of work"
    with open_append(root / "other.log") as fh:
        fh.write("line\n")
    with open_append(root / "other.log") as fh:
        fh.write("line\n")
    assert (root / "other.log").read_text() == "line\nline\n"


def test_atomic_write_replaces_a_file_link_never_its_target(root, outside):
    target = outside / "thesis.txt"
    (root / "best.weights.h5").symlink_to(target)
    with atomic_write(root / "best.weights.h5", root=root) as fh:
        fh.write("new")
    assert target.read_text() == "years of work"
    assert not (root / "best.weights.h5").is_symlink()
    assert (root / "best.weights.h5").read_text() == "new"


def test_an_output_root_equal_to_or_inside_an_input_root_is_refused(tmp_path):
    phase_c = tmp_path / "phase_c"
    phase_c.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(phase_c)
    for output in (phase_c, phase_c / "sub", alias, tmp_path / "phase_c" / "."):
        with pytest.raises(UnsafePathError) as info:
            refuse_output_in_input(output, {"--phase-c-root": phase_c}, output_flag="--artifact-root")
        _one_line(str(info.value), "--artifact-root", "--phase-c-root")
    refuse_output_in_input(tmp_path / "phase_e", {"--phase-c-root": phase_c}, output_flag="--artifact-root")


def test_an_output_root_holding_another_phases_manifest_is_refused(root):
    (root / "training_manifest.json").write_text("{}")
    with pytest.raises(UnsafePathError, match="training_manifest.json"):
        refuse_foreign_root(root, "run_manifest.json", output_flag="--output-root")
    refuse_foreign_root(root, "training_manifest.json", output_flag="--artifact-root")


def test_a_file_where_a_folder_belongs_is_one_line(root):
    (root / "job").write_text("")
    with pytest.raises(UnsafePathError) as info:
        ensure_dir(root / "job" / "logs", root)
    _one_line(str(info.value), "job")
    assert os.path.isfile(root / "job")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "link", "c.d"]), min_size=1, max_size=6))
def test_any_relative_path_is_refused_or_stays_inside_without_a_link(root, outside, parts):
    # The general property: whatever a name read from a file is made of, ensure_dir either refuses it
    # or creates a real folder inside the root, and nothing appears outside.
    if not (root / "link").is_symlink():
        (root / "link").symlink_to(outside, target_is_directory=True)
    try:
        made = ensure_dir(os.path.join(*parts), root)
    except UnsafePathError as exc:
        assert "\n" not in str(exc)
    else:
        real = os.path.realpath(made)
        assert real == os.path.realpath(root) or real.startswith(os.path.realpath(root) + os.sep)
        rel = os.path.relpath(made, root).split(os.sep)
        assert not any(os.path.islink(os.path.join(root, *rel[:i + 1])) for i in range(len(rel)))
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]


def test_a_relative_root_and_a_path_spelled_through_it_name_the_same_folder(tmp_path, monkeypatch):
    # `fly64-train train-one --job-dir jobs/one` and `--output-root study/phase_c` are relative to the
    # working folder: `root / "checkpoints"` must not become `jobs/one/jobs/one/checkpoints`.
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    root = Path("jobs") / "one"
    made = ensure_dir(root / "checkpoints", root)
    assert made == tmp_path / "jobs" / "one" / "checkpoints" and made.is_dir()
    assert not (tmp_path / "jobs" / "one" / "jobs").exists()
    write_json(root / "checkpoints" / "state.json", {"a": 1}, root=root)
    assert (tmp_path / "jobs" / "one" / "checkpoints" / "state.json").is_file()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "jobs" / "one" / "logs").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        inside_root(root / "logs" / "metrics.csv", root)
