"""`tag --ray --out`'s Parquet file: resuming one written before the state, content and weights were recorded."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamtag.errors import StreamtagError
from streamtag.tag_parquet import RUN_KEY, ParquetOutput

OLD_RUN = {"model": "streamtag-crnn", "version": "2.1.0", "hop_samples": 33280}
RUN = {**OLD_RUN, "weights_sha256": "65" * 32}
SCORES = pa.map_(pa.string(), pa.float64())
OLD_SCHEMA = pa.schema([
    ("file", pa.string()), ("duration_s", pa.float64()), ("top", pa.string()), ("genre", SCORES),
    ("taste", pa.float64()), ("moods", SCORES), ("tags", SCORES), ("taste_source", pa.string()),
    ("error", pa.string()),
])


def test_an_older_file_resumes_with_its_rows_kept_and_the_new_columns_empty(tmp_path):
    path = tmp_path / "library.parquet"
    old_row = {"file": "/music/a.ogg", "duration_s": 30.0, "top": "rock", "genre": {"rock": 0.9, "pop": 0.1},
               "taste": 0.5, "moods": {"calmness": 0.2}, "tags": {"rock": 0.6}, "taste_source": "crowd", "error": None}
    pq.write_table(pa.Table.from_pylist([old_row], schema=OLD_SCHEMA.with_metadata({RUN_KEY: json.dumps(OLD_RUN)})),
                   path)
    with ParquetOutput(path, run=RUN, resume=True) as out:
        assert out.done == {"/music/a.ogg"}
        out.add({"file": "/music/b.ogg", "duration_s": 10.0, "top": "pop", "state": "speech",
                 "genre": {"rock": 0.2, "pop": 0.8}, "content": {"music": 0.1, "speech": 0.8, "other": 0.1},
                 "taste": 0.4, "moods": {}, "tags": {}, "taste_source": "crowd", "error": None})
    rows = {row["file"]: row for row in pq.read_table(path).to_pylist()}
    assert (rows["/music/a.ogg"]["top"], rows["/music/a.ogg"]["state"], rows["/music/a.ogg"]["content"]) == (
        "rock", None, None)
    assert rows["/music/b.ogg"]["state"] == "speech" and dict(rows["/music/b.ogg"]["content"])["speech"] == 0.8
    with pytest.raises(StreamtagError, match="resume with the same --model"):  # now it records the weights
        ParquetOutput(path, run={**RUN, "weights_sha256": "00" * 32}, resume=True)
