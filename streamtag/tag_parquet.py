"""`tag --ray --out X.parquet`: the JSON records as one Parquet file, and the files it already holds (--resume).

One row per file: ``file``, ``duration_s``, ``top``, ``state``, ``genre``, ``content``, ``taste``, ``moods``,
``tags`` (maps of name -> value), ``taste_source``, and ``error`` (null for a result; set, with the rest null, for a file that could not
be decoded). Rows are written to ``X.parquet.partial``, which replaces ``X.parquet`` when the output is closed,
on an error and on Ctrl-C too; a run killed outright leaves ``X.parquet`` as it was, so ``--resume`` repeats that
run's files and never loses an earlier one's. Resuming skips the files with results and tries an error row's
file again when it is given again (the new row replaces the old one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamtag.errors import StreamtagError

_SCORES = pa.map_(pa.string(), pa.float64())
SCHEMA = pa.schema([
    ("file", pa.string()), ("duration_s", pa.float64()), ("top", pa.string()), ("state", pa.string()),
    ("genre", _SCORES), ("content", _SCORES), ("taste", pa.float64()), ("moods", _SCORES), ("tags", _SCORES),
    ("taste_source", pa.string()), ("error", pa.string()),
])
# Schema metadata naming what produced the rows: resuming with another model or hop would mix two taggings.
RUN_KEY = b"streamtag.run"
ROWS_PER_GROUP = 1000


def run_identity(info, hop_samples: int) -> dict:
    """What must not change between a run and its resumption: the model (its weights) and the hop."""
    return {"model": str(info.name), "version": str(info.version), "weights_sha256": str(info.weights_sha256),
            "hop_samples": int(hop_samples)}


class ParquetOutput:
    """The records of a run, appended row group by row group; ``done`` holds the files already tagged."""

    def __init__(self, path: Path, *, run: dict, resume: bool) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        if self.path.exists() and not resume:
            raise StreamtagError(f"{self.path} exists; pass --resume to tag only the files it lacks, or choose "
                                 "another --out")
        self._schema = SCHEMA.with_metadata({RUN_KEY: json.dumps(run).encode()})
        try:
            self._writer = pq.ParquetWriter(self.partial, self._schema)
        except OSError as exc:
            raise StreamtagError(f"{self.partial}: cannot write it ({exc}); choose another --out") from exc
        self.done: set[str] = set()
        self._errors: list[pa.RecordBatch] = []  # an earlier run's error rows: kept unless tried again
        self._rows: list[dict] = []
        self._written: set[str] = set()
        if self.path.exists():
            try:
                self._carry_over(run)
            except BaseException:
                self._writer.close()
                self.partial.unlink(missing_ok=True)
                raise

    def add(self, record: dict) -> None:
        self._rows.append(record)
        self._written.add(record["file"])
        if len(self._rows) >= ROWS_PER_GROUP:
            self._flush()

    def close(self) -> None:
        self._flush()
        for batch in self._errors:
            kept = batch.filter(pc.invert(pc.is_in(batch["file"], pa.array(sorted(self._written), pa.string()))))
            if kept.num_rows:
                self._writer.write_batch(kept)
        self._writer.close()
        os.replace(self.partial, self.path)

    def __enter__(self) -> ParquetOutput:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def _carry_over(self, run: dict) -> None:
        """Copy an earlier run's results (same model and hop) batch by batch; hold its few error rows back."""
        try:
            previous = pq.ParquetFile(self.path)
            made_by = json.loads((previous.schema_arrow.metadata or {}).get(RUN_KEY, b"null"))
            if isinstance(made_by, dict) and "weights_sha256" not in made_by:  # written before runs recorded it:
                run = {key: value for key, value in run.items() if key != "weights_sha256"}  # what it has
            if made_by != run:
                raise StreamtagError(f"{self.path} was tagged with {made_by}, not {run}; resume with the same --model "
                                     "and --hop, or choose another --out")
            for batch in previous.iter_batches():
                table = pa.Table.from_batches([batch])
                for field in self._schema:  # columns added since that run (state, content): null in its rows
                    if field.name not in table.column_names:
                        table = table.append_column(field, pa.nulls(len(table), field.type))
                for part in table.select(self._schema.names).cast(self._schema).to_batches():
                    failed = pc.is_valid(part["error"])
                    self._errors.append(part.filter(failed))
                    results = part.filter(pc.invert(failed))
                    self.done.update(results["file"].to_pylist())
                    self._writer.write_batch(results)
        except (OSError, pa.ArrowException) as exc:
            raise StreamtagError(f"{self.path}: cannot read it as Parquet ({exc}); choose another --out") from exc
