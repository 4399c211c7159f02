"""Where scores may be written: each rule refuses what an attack aimed at, and lets the rest through."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from kerasflow.tasks import storage
from kerasflow.tasks.storage.output_location import KEPT_FOLDERS, OutputLocationError, check_output_location
from kerasflow.tasks.storage.parquet_output import ParquetOutput


def scores_file(path, *, marked: bool = True) -> None:
    metadata = {b"kerasflow.scores": b"digits v1"} if marked else None
    with ParquetOutput(str(path), metadata=metadata) as output:
        output.write(pd.DataFrame({"row": [0, 1], "p": [0.1, 0.9]}), source="test")


@pytest.mark.parametrize("folder", KEPT_FOLDERS)
def test_nothing_under_the_roots_kept_folders(tmp_path, folder, monkeypatch):
    root = tmp_path / "root"
    target = root / folder / "digits" / "versions" / "1" / "model.keras"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the production model")
    with pytest.raises(OutputLocationError, match=rf"inside the storage root's {folder}/ folder") as info:
        check_output_location(str(target), root=str(root), overwrite=True)
    assert "Write the scores elsewhere" in str(info.value)
    # Reached through a link to the folder, or a relative path: the same folder.
    (tmp_path / "link").symlink_to(root / folder)
    with pytest.raises(OutputLocationError, match="inside the storage root"):
        check_output_location(str(tmp_path / "link" / "x.parquet"), root=str(root))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputLocationError, match="inside the storage root"):
        check_output_location(f"root/{folder}/new.parquet", root=str(root))
    assert target.read_bytes() == b"the production model"


def test_the_scores_folder_and_other_paths_are_fine(tmp_path):
    root = tmp_path / "root"
    check_output_location(str(root / "scores" / "digits" / "2026-12-07.parquet"), root=str(root))
    check_output_location(str(tmp_path / "registry-copy.parquet"), root=str(root))


def test_a_remote_roots_folders_and_its_local_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASFLOW_CACHE", str(tmp_path / "cache"))
    root = "s3://bucket/kerasflow"
    with pytest.raises(OutputLocationError, match="registry/ folder"):
        check_output_location(f"{root}/registry/digits/aliases/production/1.json", root=root)
    mirror = storage.cache_dir(root)
    with pytest.raises(OutputLocationError, match="datasets/ folder"):
        check_output_location(str(mirror / "datasets" / "5f69" / "ref.json"), root=root)


def test_an_input_or_a_path_its_folder_or_glob_would_read(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    table = data / "day.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(OutputLocationError, match="which is the input file"):
        check_output_location(str(table), root=str(tmp_path / "root"), inputs=[str(table)], overwrite=True)
    (tmp_path / "alias.csv").symlink_to(table)
    with pytest.raises(OutputLocationError, match="which is the input file"):
        check_output_location(str(tmp_path / "alias.csv"), root=str(tmp_path / "root"), inputs=[str(table)])
    with pytest.raises(OutputLocationError, match="would read as input the next time"):
        check_output_location(str(data / "scores.parquet"), root=str(tmp_path / "root"), input_url=str(data))
    with pytest.raises(OutputLocationError, match="would read as input the next time"):
        check_output_location(str(data / "x.csv"), root=str(tmp_path / "root"), input_url=f"{data}/*.csv")
    check_output_location(str(data / "x.parquet"), root=str(tmp_path / "root"), input_url=f"{data}/*.csv")
    assert table.read_text() == "a,b\n1,2\n"


def test_links_folders_devices_and_fifos_are_never_replaced(tmp_path):
    root = str(tmp_path / "root")
    victim = tmp_path / "victim.parquet"
    scores_file(victim)
    (tmp_path / "link.parquet").symlink_to(victim)
    os.mkfifo(tmp_path / "fifo.parquet")
    (tmp_path / "folder.parquet").mkdir()
    for path, what in [
        (tmp_path / "link.parquet", "a symbolic link"),
        (tmp_path / "fifo.parquet", "a device, FIFO or socket"),
        (tmp_path / "folder.parquet", "a directory"),
        ("/dev/null", "a device, FIFO or socket"),
    ]:
        with pytest.raises(OutputLocationError, match=f"which is {what}; kerasflow replaces only regular files"):
            check_output_location(str(path), root=root, overwrite=True)
    # The skew report beside the scores is held to the same rules.
    (tmp_path / "out.skew.json").symlink_to(victim)
    with pytest.raises(OutputLocationError, match=r"out\.skew\.json, which is a symbolic link"):
        check_output_location(str(tmp_path / "out.parquet"), root=root, beside=[str(tmp_path / "out.skew.json")])


def test_an_existing_file_is_replaced_only_when_kerasflow_wrote_it_as_scores(tmp_path):
    root = str(tmp_path / "root")
    ours, theirs, unmarked = tmp_path / "ours.parquet", tmp_path / "theirs.txt", tmp_path / "table.parquet"
    scores_file(ours)
    theirs.write_text("a team's notes")
    scores_file(unmarked, marked=False)
    check_output_location(str(ours), root=root)
    for path in (theirs, unmarked):
        with pytest.raises(OutputLocationError, match="kerasflow did not write as scores; it is left as it is") as info:
            check_output_location(str(path), root=root)
        assert "pass --overwrite to replace it" in str(info.value)
        check_output_location(str(path), root=root, overwrite=True)
    assert theirs.read_text() == "a team's notes"


def test_a_link_put_in_place_after_the_check_is_not_replaced_at_commit(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "scores.parquet"
    with pytest.raises(OutputLocationError, match="symbolic link"), ParquetOutput(str(target)) as output:
        output.write(pd.DataFrame({"row": [0]}), source="test")
        target.symlink_to(victim)
    assert victim.read_text() == "keep me" and target.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet", "victim.txt"], "no partial left"


def test_on_s3_a_folder_and_a_foreign_object_are_refused(s3_bucket):
    fs, _ = storage.filesystem(s3_bucket)
    fs.pipe_file(f"{s3_bucket}/out/part-0.parquet".removeprefix("s3://"), b"data")
    fs.pipe_file(f"{s3_bucket}/notes.txt".removeprefix("s3://"), b"a team's notes")
    root = f"{s3_bucket}/kerasflow"
    with pytest.raises(OutputLocationError, match="which is a folder"):
        check_output_location(f"{s3_bucket}/out", root=root)
    with pytest.raises(OutputLocationError, match="kerasflow did not write as scores"):
        check_output_location(f"{s3_bucket}/notes.txt", root=root)
    ours = f"{s3_bucket}/scores.parquet"
    scores_file(ours)
    check_output_location(ours, root=root)
