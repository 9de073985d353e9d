"""Hostile JSON: every reader of a study's JSON refuses it in one line naming the file.

Each test builds its bad file itself. The general property (any bytes at all
give a document or a ManifestError, never another exception) is checked with
hypothesis-generated inputs.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fly64_manifest import (
    ManifestError,
    Study,
    load_overlap_manifest,
    load_overlap_metrics,
    load_run_manifest,
    load_skip_summary,
    load_training_manifest,
    read_json,
    validate,
)
from fly64_manifest.cli import main
from fly64_manifest.io import parse_json

DEPTH = 100_000
DEEP_OBJECT = '{"a":' * DEPTH + "1" + "}" * DEPTH
DEEP_ARRAY = "[" * DEPTH + "]" * DEPTH
#: Each typed loader and the file of the tiny study it reads.
EVERY_LOADER = [
    (load_run_manifest, "phase_c/run_manifest.json"),
    (load_overlap_manifest, "phase_d/overlap_manifest.json"),
    (load_training_manifest, "phase_e/training_manifest.json"),
    (load_skip_summary, "phase_e/skip_summary.json"),
    (load_overlap_metrics, "phase_d/dose_1000/dense/dense_metrics.json"),
]


def _assert_one_line(message: str, *needles: str) -> None:
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message, message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("text", [DEEP_OBJECT, DEEP_ARRAY], ids=["object", "array"])
def test_read_json_refuses_100000_levels_naming_the_file(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        read_json(path)
    _assert_one_line(str(info.value), str(path), "nested")


def test_nesting_that_parses_but_would_overflow_later_code_is_refused(tmp_path):
    # 500 levels parse with the stdlib, but recursive consumers (schema validation,
    # freezing into models) would still hit the recursion limit: refuse at read time.
    path = tmp_path / "run_manifest.json"
    path.write_text('{"doses":' + "[" * 500 + "]" * 500 + "}")
    with pytest.raises(ManifestError) as info:
        load_run_manifest(path)
    _assert_one_line(str(info.value), str(path), "nested")


@pytest.mark.parametrize(("loader", "relpath"), EVERY_LOADER)
def test_every_loader_refuses_a_deep_manifest(tiny_study, loader, relpath):
    path = tiny_study / relpath
    path.write_text(DEEP_OBJECT)
    with pytest.raises(ManifestError) as info:
        loader(path)
    _assert_one_line(str(info.value), str(path.name), "nested")


def test_study_view_and_validate_refuse_a_deep_manifest(tiny_study):
    path = tiny_study / "phase_e" / "training_manifest.json"
    path.write_text(DEEP_OBJECT)
    with pytest.raises(ManifestError, match="nested"):
        validate(path, "training_manifest")
    with pytest.raises(ManifestError, match="nested"):
        Study(tiny_study).jobs  # noqa: B018 - the property loads the manifest


def test_cli_validate_deep_file_is_one_line_error(tmp_path, capsys):
    path = tmp_path / "run_manifest.json"
    path.write_text(DEEP_OBJECT)
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    _assert_one_line(captured.err, str(path), "nested")
    assert captured.out == ""


@pytest.mark.parametrize("relpath", ["phase_c/run_manifest.json", "phase_e/training_manifest.json"])
def test_cli_verify_reports_the_deep_file(tiny_study, capsys, relpath):
    path = tiny_study / relpath
    path.write_text(DEEP_OBJECT)
    assert main(["verify", str(tiny_study)]) == 1
    out = capsys.readouterr().out
    deep_lines = [line for line in out.splitlines() if "nested" in line]
    assert deep_lines and all(relpath.split("/")[-1] in line for line in deep_lines), out
    assert "Traceback" not in out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                              lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                                  st.text(max_size=5), inner, max_size=3), max_leaves=20)
                 .map(lambda doc: repr(doc).encode())))
def test_any_bytes_give_a_document_or_a_manifest_error(tmp_path, raw):
    path = tmp_path / "doc.json"
    path.write_bytes(raw)
    try:
        read_json(path)
    except ManifestError as exc:
        _assert_one_line(str(exc), str(path))


def test_parse_json_names_the_source_it_is_given():
    with pytest.raises(ManifestError) as info:
        parse_json("[" * DEPTH, source="member _metadata of x.npz")
    _assert_one_line(str(info.value), "member _metadata of x.npz")
    assert parse_json('{"a": [1, 2]}', source="s") == {"a": [1, 2]}


@pytest.mark.parametrize(("text", "needle"), [
    ('{"ssim": NaN}', "NaN"),
    ('{"ssim": Infinity}', "Infinity"),
    ('{"ssim": -Infinity}', "-Infinity"),
    ('{"ssim": 1e400}', "out of range"),
    ('{"ssim": 0.3, "ssim": 0.9}', "duplicate key 'ssim'"),
    ('{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
], ids=["nan", "inf", "-inf", "overflow", "duplicate", "nested-duplicate"])
def test_read_json_refuses_what_strict_json_does_not_allow(tmp_path, text, needle):
    # The stdlib accepts every one of these; a NaN metric would render as a score and a
    # duplicate key lets two readers believe two different values.
    path = tmp_path / "doc.json"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        read_json(path)
    _assert_one_line(str(info.value), str(path), needle)


def test_cli_validate_refuses_a_nan_metric(tiny_study, capsys):
    import re

    path = tiny_study / "phase_e" / "training_manifest.json"
    text, count = re.subn(r'"ssim": [0-9.e-]+', '"ssim": NaN', path.read_text(), count=1)
    assert count == 1
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    _assert_one_line(capsys.readouterr().err, str(path), "NaN")


@settings(max_examples=50, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                max_size=3), max_leaves=15),
       st.sampled_from(["NaN", "Infinity", "-Infinity"]))
def test_a_non_finite_constant_anywhere_is_refused(doc, constant):
    import json

    text = json.dumps({"ok": doc, "bad": [doc, {"x": None}]}).replace("null", constant)
    with pytest.raises(ManifestError, match="is not a JSON number"):
        parse_json(text, source="s")
    assert parse_json(json.dumps(doc), source="s") == doc


@pytest.mark.parametrize(("loader", "relpath"), EVERY_LOADER)
@pytest.mark.parametrize(("edit", "needle"), [
    (lambda text: text.replace('"kind"', '"kind": "x", "kind"', 1), "duplicate key 'kind'"),
    (lambda text: text.replace('"schema_version"', '"nan": NaN, "schema_version"', 1), "NaN"),
], ids=["duplicate", "nan"])
def test_every_loader_refuses_what_the_one_parser_refuses(tiny_study, loader, relpath, edit, needle):
    # One parser everywhere: each typed loader refuses exactly what read_json refuses.
    path = tiny_study / relpath
    path.write_text(edit(path.read_text()))
    with pytest.raises(ManifestError) as info:
        loader(path)
    _assert_one_line(str(info.value), path.name, needle)
