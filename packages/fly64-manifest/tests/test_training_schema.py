"""The Phase E schemas accept what the writer produces and reject each kind of broken document."""

import copy
import re

import pytest

from fly64_manifest import KINDS, ManifestError, load_schema, load_training_manifest, validate, write_json


def test_tiny_study_documents_are_valid(training_doc, skip_doc):
    assert validate(training_doc, "training_manifest") is training_doc
    assert validate(skip_doc, "skip_summary") is skip_doc


def _job(doc, status="success"):
    return next(j for j in doc["jobs"] if j["result"]["status"] == status)


BROKEN_TRAINING = {
    "missing top field": (lambda d: d.pop("skipped_count"), "<root>"),
    "missing result field": (lambda d: _job(d)["result"].pop("bundle_sha256"), "jobs/0/result"),
    "dose is a string": (lambda d: _job(d).update(dose="1000"), "jobs/0/dose"),
    "gridsize 3": (lambda d: _job(d).update(gridsize=3), "jobs/0/gridsize"),
    "unknown view": (lambda d: _job(d).update(view="medium"), "jobs/0/view"),
    "unknown status": (lambda d: _job(d)["result"].update(status="done"), "jobs/0/result/status"),
    "epochs is a float": (lambda d: _job(d)["result"].update(epochs_completed=1.5),
                          "jobs/0/result/epochs_completed"),
    "absolute bundle path": (lambda d: _job(d)["result"].update(bundle_path="/tmp/wts.h5.zip"),
                             "jobs/0/result/bundle_path"),
    "windows absolute log": (lambda d: _job(d).update(log_path="C:/logs/train.log"), "jobs/0/log_path"),
    "dotdot bundle path": (lambda d: _job(d)["result"].update(bundle_path="../other/wts.h5.zip"),
                           "jobs/0/result/bundle_path"),
    "dotdot data path": (lambda d: _job(d).update(train_data_path="dose_1000/../../x.npz"),
                         "jobs/0/train_data_path"),
    "job_dir off layout": (lambda d: _job(d).update(job_dir="runs/a"), "jobs/0/job_dir"),
    "uppercase sha256": (lambda d: _job(d)["result"].update(bundle_sha256="A" * 64), "jobs/0/result/bundle_sha256"),
    "short sha256": (lambda d: _job(d)["result"].update(bundle_sha256="ab12"), "jobs/0/result/bundle_sha256"),
    "success without bundle": (lambda d: _job(d)["result"].update(bundle_path=None), "jobs/0/result/bundle_path"),
    "success without size": (lambda d: _job(d)["result"].update(bundle_size_bytes=None),
                             "jobs/0/result/bundle_size_bytes"),
    "failed without error": (lambda d: _job(d, "failed")["result"].update(error=None), "jobs/3/result/error"),
    "metric not a number": (lambda d: _job(d)["result"]["metrics"]["phase"].update(ssim="high"),
                            "jobs/0/result/metrics"),
    "bad timestamp": (lambda d: d.update(timestamp="22/11/2026"), "timestamp"),
    "local-time timestamp": (lambda d: d.update(timestamp="2026-11-22T04:00:00+02:00"), "timestamp"),
    "bad data_root": (lambda d: _job(d).update(data_root="phase_x_root"), "jobs/0/data_root"),
    "skip summary path": (lambda d: d.update(skip_summary_path="skips.json"), "skip_summary_path"),
    "filter not a list": (lambda d: d["filters"].update(dose=1000), "filters/dose"),
    "skip without reason": (lambda d: d["skipped_views"][0].pop("reason"), "skipped_views/0"),
    "wrong kind": (lambda d: d.update(kind="run_manifest"), "kind"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_TRAINING))
def test_training_schema_rejects(training_doc, case):
    mutate, where = BROKEN_TRAINING[case]
    mutate(training_doc)
    with pytest.raises(ManifestError, match=f"^x.json: training_manifest invalid at {where}: ") as info:
        validate(training_doc, "training_manifest", source="x.json")
    assert "\n" not in str(info.value)


def test_path_error_message_is_readable(training_doc):
    _job(training_doc)["result"]["bundle_path"] = "/tmp/wts.h5.zip"
    with pytest.raises(ManifestError) as info:
        validate(training_doc, "training_manifest", source="x.json")
    # Not jsonschema's dump of the whole sub-schema.
    assert "must be a relative path" in str(info.value) and "anyOf" not in str(info.value)


BROKEN_SKIP = {
    "missing count": (lambda d: d.pop("skipped_count"), "<root>"),
    "count is a string": (lambda d: d.update(skipped_count="1"), "skipped_count"),
    "bad view": (lambda d: d["skipped_views"][0].update(view="medium"), "skipped_views/0/view"),
    "negative dose": (lambda d: d["skipped_views"][0].update(dose=-1), "skipped_views/0/dose"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SKIP))
def test_skip_summary_schema_rejects(skip_doc, case):
    mutate, where = BROKEN_SKIP[case]
    mutate(skip_doc)
    with pytest.raises(ManifestError, match=f"skip_summary invalid at {where}: "):
        validate(skip_doc, "skip_summary", source="s.json")


def test_failed_and_dry_run_jobs_may_lack_a_bundle(training_doc):
    job = _job(training_doc)
    job["result"].update(status="dry_run", bundle_path=None, bundle_sha256=None, bundle_size_bytes=None,
                         metrics=None, final_loss=None)
    validate(training_doc, "training_manifest")


def test_skipped_view_definition_is_shared():
    # The two schemas are self-contained; their skipped-view records must not drift apart.
    train, skip = load_schema("training_manifest")["$defs"], load_schema("skip_summary")["$defs"]
    for name in ("skipped_view", "dose", "view", "gridsize", "timestamp"):
        assert train[name] == skip[name], name


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_schema_has_a_versioned_id(kind):
    schema = load_schema(kind)
    # Minor versions add optional fields (training_manifest and skip_summary are 1.1); the major is 1.
    assert re.search(rf"/{kind}/1\.[0-9]+\.json$", schema["$id"])


def test_newer_major_version_refused_clearly(tiny_study, training_doc):
    training_doc["schema_version"] = "2.0"
    path = tiny_study / "phase_e" / "training_manifest.json"
    write_json(path, training_doc)
    with pytest.raises(ManifestError, match=r"schema_version 2\.0 is newer than fly64-manifest .* upgrade"):
        load_training_manifest(tiny_study)


def test_newer_minor_version_with_extra_fields_loads(tiny_study, training_doc):
    training_doc["schema_version"] = "1.7"
    training_doc["cluster"] = {"nodes": 4}
    _job(training_doc)["result"]["gpu_hours"] = 0.5
    _job(training_doc)["result"]["metrics"]["phase"]["frc_area"] = 0.3
    path = tiny_study / "phase_e" / "training_manifest.json"
    write_json(path, copy.deepcopy(training_doc), "training_manifest")
    manifest = load_training_manifest(path)
    assert manifest.schema_version == "1.7"
    assert manifest.raw["cluster"]["nodes"] == 4
    assert manifest.jobs[0].raw["result"]["gpu_hours"] == 0.5
    assert manifest.jobs[0].metric("phase", "frc_area") == 0.3


def test_conditional_rule_says_why(training_doc):
    _job(training_doc)["result"]["bundle_sha256"] = None
    with pytest.raises(ManifestError, match=r"bundle_sha256: None is not of type 'string' \(required by the entry's"):
        validate(training_doc, "training_manifest")
