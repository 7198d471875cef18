"""The journal: `read` leaves a file being written untouched, `load` cuts a torn tail, a corrupt middle is refused."""

from pathlib import Path

import pytest

from schemas.base import Strict
from schemas.files import Journal


class Row(Strict):
    n: int


def journal_with_torn_tail(tmp_path: Path) -> Journal[Row]:
    journal = Journal(tmp_path / "log.jsonl", Row)
    for n in range(3):
        journal.append(Row(n=n))
    journal.close()
    with journal.path.open("ab") as handle:
        handle.write(b'{"n": 3')
    return journal


def test_read_skips_a_torn_tail_and_leaves_the_file(tmp_path: Path) -> None:
    journal = journal_with_torn_tail(tmp_path)
    before = journal.path.read_bytes()
    rows, end = journal.read()
    assert [row.n for row in rows] == [0, 1, 2]
    assert journal.path.read_bytes() == before and end == before.rindex(b"\n") + 1


def test_load_cuts_the_torn_tail_so_appends_stay_whole(tmp_path: Path) -> None:
    journal = journal_with_torn_tail(tmp_path)
    assert [row.n for row in journal.load()] == [0, 1, 2]
    journal.append(Row(n=3))
    journal.close()
    assert [row.n for row in journal.load()] == [0, 1, 2, 3]


def test_a_corrupt_record_before_the_end_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n": 0}\n{"n": "x"}\n{"n": 2}\n')
    with pytest.raises(ValueError, match="log.jsonl: corrupt record at byte 9"):
        Journal(path, Row).read()
