"""`shoal enqueue` and `shoal jobs ...` against a real server: tables, --json, bulk, errors."""

from __future__ import annotations

import json

from tests.cli.conftest import Shoal, as_json


def enqueue(shoal: Shoal, task: str, *options: str) -> str:
    done = shoal("enqueue", task, *options)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert len(job_id) == 36
    return job_id


def test_enqueue_prints_the_id_and_show_gives_the_job(shoal: Shoal) -> None:
    job_id = enqueue(shoal, "mail.send", "--args", '["ada", 3]', "--kwargs", '{"urgent": true}')

    job = as_json(shoal("jobs", "show", job_id, "--json"))
    assert job["id"] == job_id
    assert job["task"] == "mail.send"
    assert job["state"] == "queued"
    assert job["payload"] == {"args": ["ada", 3], "kwargs": {"urgent": True}}

    table = shoal("jobs", "show", job_id)
    assert table.returncode == 0
    assert "mail.send" in table.stdout and "queued" in table.stdout


def test_enqueue_options_and_json(shoal: Shoal) -> None:
    job = as_json(
        shoal(
            "enqueue",
            "report.build",
            *("--queue", "reports", "--delay", "1h", "--priority", "7"),
            *("--idempotency-key", "nightly", "--json"),
        )
    )
    assert (job["queue"], job["state"], job["priority"]) == ("reports", "scheduled", 7)
    assert job["created"] is True
    assert job["run_at"] - job["created_at"] > 3500
    again = as_json(shoal("enqueue", "report.build", "--idempotency-key", "nightly", "--json"))
    assert again["id"] == job["id"] and again["created"] is False


def test_ls_filters_pages_and_shows_a_table(shoal: Shoal) -> None:
    ids = [enqueue(shoal, "a.task", "--queue", "qa") for _ in range(3)]
    enqueue(shoal, "b.task", "--queue", "qb")

    page = as_json(shoal("jobs", "ls", "--queue", "qa", "--json"))
    assert sorted(job["id"] for job in page["jobs"]) == sorted(ids)
    assert page["next_cursor"] is None
    by_task = as_json(shoal("jobs", "ls", "--task", "b.task", "--state", "queued", "--json"))
    assert [job["task"] for job in by_task["jobs"]] == ["b.task"]

    first = as_json(shoal("jobs", "ls", "--limit", "2", "--json"))
    assert len(first["jobs"]) == 2 and first["next_cursor"]
    rest = as_json(shoal("jobs", "ls", "--limit", "2", "--cursor", first["next_cursor"], "--json"))
    seen = {job["id"] for job in first["jobs"] + rest["jobs"]}
    assert len(seen) == 4

    table = shoal("jobs", "ls", "--queue", "qa")
    assert table.returncode == 0
    for job_id in ids:
        assert job_id in table.stdout  # ids are never cut


def test_cancel_retry_and_rm_one_job(shoal: Shoal) -> None:
    job_id = enqueue(shoal, "x.task")
    assert as_json(shoal("jobs", "cancel", job_id, "--json"))["done"] == [job_id]
    assert as_json(shoal("jobs", "show", job_id, "--json"))["state"] == "cancelled"
    retried = shoal("jobs", "retry", job_id)
    assert retried.returncode == 0 and "retry: 1 job(s)" in retried.stdout
    assert as_json(shoal("jobs", "show", job_id, "--json"))["state"] == "queued"
    assert shoal("jobs", "rm", job_id).returncode == 0

    gone = shoal("jobs", "show", job_id)
    assert gone.returncode == 1
    assert gone.stdout == ""
    assert gone.stderr.startswith("shoal: error: not_found: ")
    assert len(gone.stderr.strip().splitlines()) == 1


def test_bulk_actions_page_through_the_filter(shoal: Shoal) -> None:
    ids = {enqueue(shoal, "bulk.task", "--queue", "bulk") for _ in range(5)}
    keep = enqueue(shoal, "other.task", "--queue", "other")

    cancelled = as_json(shoal("jobs", "cancel", "--all", "--queue", "bulk", "--json"))
    assert set(cancelled["done"]) == ids and cancelled["failed"] == []
    retried = as_json(shoal("jobs", "retry", "--all", "--state", "cancelled", "--json"))
    assert set(retried["done"]) == ids
    removed = shoal("jobs", "rm", "--all", "--task", "bulk.task")
    assert removed.returncode == 0 and "rm: 5 job(s)" in removed.stdout

    left = as_json(shoal("jobs", "ls", "--json"))
    assert [job["id"] for job in left["jobs"]] == [keep]


def test_a_refused_item_of_a_bulk_action_is_reported_and_exits_1(shoal: Shoal) -> None:
    queued = enqueue(shoal, "y.task")
    other = enqueue(shoal, "y.task")
    shoal("jobs", "cancel", other)
    # retry is refused for a queued job (conflict) but done for the cancelled one
    both = shoal("jobs", "retry", queued, other, "--json")
    assert both.returncode == 1
    report = json.loads(both.stdout)
    assert report["done"] == [other]
    assert [(item["id"], item["code"]) for item in report["failed"]] == [(queued, "conflict")]


def test_usage_errors_exit_2(shoal: Shoal) -> None:
    neither = shoal("jobs", "rm")
    assert neither.returncode == 2
    assert "give job ids, or --all" in neither.stderr
    # filters beside ids were ignored: `rm ID --state failed` removed the job in any state
    filtered = shoal("jobs", "rm", "01a2", "--state", "failed")
    assert filtered.returncode == 2
    assert "--state, --queue and --task go with --all" in filtered.stderr
    assert shoal("jobs", "ls", "--state", "sleeping").returncode == 2
    bad_args = shoal("enqueue", "t", "--args", "[1,")
    assert bad_args.returncode == 2 and "--args: not JSON" in bad_args.stderr
    assert shoal("enqueue", "t", "--delay", "soon").returncode == 2


def test_bad_input_is_one_line_with_the_error_code(shoal: Shoal) -> None:
    refused = shoal("enqueue", "has space")
    assert refused.returncode == 1
    assert refused.stderr.startswith("shoal: error: invalid_argument: ")


def test_an_unknown_url_scheme_is_a_config_error(shoal: Shoal) -> None:
    done = shoal("jobs", "ls", url="http://127.0.0.1:1")
    assert done.returncode == 1
    assert done.stderr.startswith("shoal: error: config_error: ")


def test_no_server_is_unavailable(shoal: Shoal) -> None:
    done = shoal("queues", "ls", url="grpc://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.startswith("shoal: error: unavailable: ")
