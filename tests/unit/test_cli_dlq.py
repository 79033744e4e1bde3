"""`cloudcart dlq`: the dead-letter commands against the embedded broker in CLOUDCART_DATA_DIR."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudcart.composition import Services
from cloudcart.core.messages import embedded
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.ports.messages import DeadLetter, DeadLetterNotFound
from cloudcart.core.settings import Settings
from cloudcart.local.cli_dlq import cli_actor, dlq_app
from tests.unit.test_dead_letters_api import (
    TEST_TOPOLOGY,
    audit_records,
    fail_until_dead,
    publish,
    seed,
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cli-data"
    monkeypatch.setenv("CLOUDCART_DATA_DIR", str(folder))
    # The CLI builds its broker through Services -> embedded.from_settings, which uses this.
    monkeypatch.setattr(embedded, "TOPOLOGY", TEST_TOPOLOGY)
    return folder


@pytest.fixture
def services(data_dir: Path) -> Iterator[Services]:
    # The test's own handle on the same files the CLI opens (SQLite WAL: shared safely).
    own = Services(Settings(data_dir=data_dir))
    yield own
    own.close()


@pytest.fixture
def broker(services: Services) -> SqliteBroker:
    messages = services.messages
    assert isinstance(messages, SqliteBroker)
    return messages


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(dlq_app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def letter_of(
    broker: SqliteBroker, entity: str, subscription: str | None, message_id: str
) -> DeadLetter:
    letters = broker.list_dead_letters(entity, subscription)
    return next(letter for letter in letters if letter.message_id == message_id)


def test_list_prints_one_line_per_dead_letter(broker: SqliteBroker) -> None:
    seed(broker)
    code, out, _ = run("list")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4
    billing = next(line for line in lines if "shop-events/billing" in line)
    assert "MaxDeliveryCountExceeded" in billing
    assert "deliveries: 2" in billing
    assert "evt-1" in billing


def test_list_json_filtered_by_entity(broker: SqliteBroker) -> None:
    seed(broker)
    code, out, _ = run("list", "--entity", "partner-calls", "--json")
    assert code == 0
    items = json.loads(out)["items"]
    assert {item["messageId"] for item in items} == {"cmd-1", "cmd-2"}
    text = next(item for item in items if item["messageId"] == "cmd-2")
    assert text["body"] == "plain words"
    assert text["reason"] == "InvalidMessage"

    code, out, _ = run("list", "--entity", "shop-events", "--subscription", "mailer", "--json")
    assert code == 0
    assert [item["subscription"] for item in json.loads(out)["items"]] == ["mailer"]


def test_list_when_there_are_none(broker: SqliteBroker) -> None:
    code, out, _ = run("list")
    assert code == 0
    assert "no dead letters" in out


def test_list_unknown_entity_exits_1(data_dir: Path) -> None:
    code, _, err = run("list", "--entity", "nope")
    assert code == 1
    assert "nope" in err


def test_show_prints_the_decoded_letter(broker: SqliteBroker) -> None:
    seed(broker)
    letter = letter_of(broker, "partner-calls", None, "cmd-1")
    code, out, _ = run("show", letter.id)
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == letter.id
    assert shown["bodyEncoding"] == "base64"
    assert shown["properties"] == {"partner": "erp", "attempt": 3}


def test_show_unknown_exits_1(data_dir: Path) -> None:
    code, _, err = run("show", "dl-missing")
    assert code == 1
    assert "no dead letter with id 'dl-missing'" in err


def test_resubmit_puts_it_back_and_audits_the_os_user(
    broker: SqliteBroker, services: Services
) -> None:
    seed(broker)
    letter = letter_of(broker, "shop-events", "billing", "evt-1")
    code, out, _ = run("resubmit", letter.id)
    assert code == 0, out
    assert "resubmitted" in out
    assert "shop-events/billing" in out

    with pytest.raises(DeadLetterNotFound):
        broker.peek(letter.id)
    [again] = broker.receive("shop-events", "billing")
    assert again.message_id == "evt-1~r1"

    actor = cli_actor()
    assert actor.startswith("cli:")
    [record] = audit_records(services.documents, actor)
    assert record["action"] == "dead_letter.resubmit"
    assert record["target"]["deadLetterId"] == letter.id


def test_resubmit_unknown_exits_1(data_dir: Path) -> None:
    code, _, err = run("resubmit", "dl-missing")
    assert code == 1
    assert "dl-missing" in err


def test_resubmit_inside_the_duplicate_window_sends_a_copy_with_a_new_id(
    broker: SqliteBroker, services: Services
) -> None:
    publish(broker, "dedup-calls", "cmd-dup", {"n": 1})
    fail_until_dead(broker, "dedup-calls")
    [letter] = broker.list_dead_letters("dedup-calls")
    code, out, _ = run("resubmit", letter.id)
    assert code == 0
    assert "cmd-dup" in out
    [copy] = broker.receive("dedup-calls")
    assert copy.message_id == "cmd-dup~r1"
    assert broker.list_dead_letters("dedup-calls") == []
    [record] = audit_records(services.documents, cli_actor())
    assert record["action"] == "dead_letter.resubmit"


def test_purge_asks_first_and_keeps_the_letter_when_refused(
    broker: SqliteBroker, services: Services
) -> None:
    seed(broker)
    letter = letter_of(broker, "partner-calls", None, "cmd-2")
    code, out, _ = run("purge", letter.id, input="n\n")
    assert code == 1  # click's Abort
    assert "for good?" in out
    assert "partner-calls" in out
    assert broker.peek(letter.id) == letter
    assert audit_records(services.documents, cli_actor()) == []


def test_purge_confirmed_deletes_and_audits(broker: SqliteBroker, services: Services) -> None:
    seed(broker)
    letter = letter_of(broker, "partner-calls", None, "cmd-2")
    code, out, _ = run("purge", letter.id, input="y\n")
    assert code == 0, out
    assert f"purged {letter.id}" in out
    with pytest.raises(DeadLetterNotFound):
        broker.peek(letter.id)
    [record] = audit_records(services.documents, cli_actor())
    assert record["action"] == "dead_letter.purge"
    assert record["target"]["messageId"] == "cmd-2"


def test_purge_yes_skips_the_question(broker: SqliteBroker) -> None:
    seed(broker)
    letter = letter_of(broker, "partner-calls", None, "cmd-1")
    code, out, _ = run("purge", letter.id, "--yes")
    assert code == 0
    assert "for good?" not in out
    assert {d.message_id for d in broker.list_dead_letters("partner-calls")} == {"cmd-2"}
    # Purged, not resubmitted.
    assert broker.receive("partner-calls") == []


def test_purge_unknown_exits_1_without_asking(data_dir: Path) -> None:
    code, out, err = run("purge", "dl-missing")
    assert code == 1
    assert "for good?" not in out
    assert "dl-missing" in err


@pytest.mark.parametrize("command", ["list", "show", "resubmit", "purge"])
def test_commands_have_help(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Usage" in out
