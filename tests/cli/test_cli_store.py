"""stats, compact, verify and backup, and the statuses of a locked, damaged or full store."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from _cli import Aiokv, run

import aiokv as kv

pytestmark = pytest.mark.slow  # each test runs the command in fresh interpreters

SECONDS = r"\d+\.\d\d s"


def fill(path: Path, count: int, pad: int = 100) -> None:
    """``count`` keys ``k0``... written by the library, the store closed after."""
    with kv.DataStore(path) as store:
        store.create_many({f"k{i}": {"i": i, "pad": "x" * pad} for i in range(count)})


def damage(path: Path) -> None:
    """Flip a byte inside the second record of the first data file (a closed store)."""
    data_file = sorted(path.glob("*.data"))[0]
    raw = bytearray(data_file.read_bytes())
    raw[200] ^= 0xFF
    data_file.write_bytes(bytes(raw))


def test_stats_json_has_the_storestats_fields(aiokv: Aiokv, store_path: Path) -> None:
    fill(store_path, 20)
    with kv.DataStore(store_path) as store:
        expected = dataclasses.asdict(store.stats())
    shown = aiokv("stats")
    assert (shown.status, shown.stderr) == (0, "")
    assert json.loads(shown.stdout) == expected
    assert list(expected) == [field.name for field in dataclasses.fields(kv.StoreStats)]


def test_stats_human_is_a_table(aiokv: Aiokv, store_path: Path) -> None:
    fill(store_path, 20)
    shown = aiokv("--human", "stats")
    assert shown.status == 0
    rows = {line.split("  ")[0]: line for line in shown.stdout.splitlines() if line[0] != " "}
    assert list(rows) == [
        "store",
        "live keys",
        "live bytes",
        "dead bytes",
        "disk use",
        "data files",
        "last compaction",
    ]
    folded = "".join(line.strip() for line in shown.stdout.splitlines()[:2])
    assert str(store_path) in folded.removeprefix("store")
    assert rows["live keys"].split()[-1] == "20"
    assert re.search(r"[█░]{20} \d+\.\d KiB of 1\.0 GiB \(0\.0%\)", rows["disk use"])
    assert rows["data files"].split()[-1] == "1"


def test_compact_reports_the_bytes_reclaimed(aiokv: Aiokv, store_path: Path) -> None:
    fill(store_path, 10)
    compacted = aiokv("compact")
    assert compacted.status == 0
    assert json.loads(compacted.stdout) == {"reclaimed_bytes": 0}
    assert re.fullmatch(f"aiokv: compacted: 0 B reclaimed in {SECONDS}", compacted.stderr.strip())


def test_verify_of_a_sound_store(aiokv: Aiokv, store_path: Path) -> None:
    fill(store_path, 10)
    checked = aiokv("verify")
    assert checked.status == 0
    report = json.loads(checked.stdout)
    assert report == {
        "ok": True,
        "files": 2,
        "records": 10,
        "bytes_checked": report["bytes_checked"],
        "problems": [],
    }
    assert re.fullmatch(
        rf"aiokv: verified 2 files, 10 records, \d+\.\d KiB in {SECONDS}: no problems",
        checked.stderr.strip(),
    )


def test_damage_gives_status_4(aiokv: Aiokv, store_path: Path) -> None:
    fill(store_path, 10)
    damage(store_path)
    checked = aiokv("verify")
    assert checked.status == 4
    problems = json.loads(checked.stdout)["problems"]
    assert problems[0]["what"].startswith("bad record: ")
    assert problems[0]["file"].endswith("00000001.data")
    assert checked.lines[-1].endswith(f": {len(problems)} problems")
    human = aiokv("--human", "verify")
    assert human.status == 4
    assert "bad record: " in human.stdout
    read = aiokv("export", "-")
    assert read.status == 4
    assert len(read.lines) == 1
    assert re.fullmatch(
        r"aiokv: .*00000001\.data: bad record at offset \d+: .*", read.stderr.strip()
    )


def test_a_store_held_by_another_process_gives_status_3(aiokv: Aiokv, store_path: Path) -> None:
    with kv.DataStore(store_path):
        held = aiokv("keys")
    assert (held.status, held.stdout) == (3, "")
    assert held.lines == [
        f"aiokv: {store_path} is already open (by this process or another); "
        "a store can be open once at a time"
    ]


def test_backup_makes_a_store_of_its_own(aiokv: Aiokv, store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 25)
    dest = tmp_path / "copy"
    made = aiokv("backup", dest)
    assert (made.status, made.stdout) == (0, "")
    assert re.fullmatch(
        rf"aiokv: backed up 25 keys, \d+\.\d KiB, to {dest} in {SECONDS}", made.stderr.strip()
    )
    copied = run("--path", dest, "keys")
    assert sorted(json.loads(copied.stdout)) == sorted(f"k{i}" for i in range(25))
    again = aiokv("backup", dest)
    assert (again.status, again.lines) == (
        1,
        [f"aiokv: {dest} is not empty: a backup goes to a new or empty directory"],
    )


def test_a_file_where_the_store_should_be_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    refused = run("--path", tmp_path / "file", "keys")
    assert (refused.status, refused.lines) == (
        1,
        [f"aiokv: {tmp_path / 'file'} exists and is not a directory"],
    )


def test_io_errors_give_status_5(aiokv: Aiokv, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such.jsonl"
    exported = aiokv("export", missing)
    assert (exported.status, exported.lines) == (
        5,
        [f"aiokv: exporting to {missing} (nothing was left there): No such file or directory"],
    )
    imported = aiokv("import", missing)
    assert (imported.status, imported.lines) == (
        5,
        [f"aiokv: reading {missing}: No such file or directory"],
    )


def test_a_full_disk_gives_status_5(aiokv: Aiokv, store_path: Path, tmp_path: Path) -> None:
    from _tmpfs import mounted_tmpfs

    fill(store_path, 400, pad=400)  # about 200 KiB
    with mounted_tmpfs(tmp_path / "disk", 64 * 1024) as disk:
        full = aiokv("backup", disk / "copy")
        assert full.status == 5
        assert len(full.lines) == 1
        assert full.lines[0].startswith("aiokv: the disk is full")
        assert not (disk / "copy").exists() or not any((disk / "copy").iterdir())


@pytest.mark.parametrize("command", ["stats", "verify", "compact", "keys"])
def test_every_store_command_closes_the_store(aiokv: Aiokv, store_path: Path, command: str) -> None:
    assert aiokv(command).status == 0
    with kv.DataStore(store_path) as store:  # the lock was let go
        assert store.stats().live_keys == 0
