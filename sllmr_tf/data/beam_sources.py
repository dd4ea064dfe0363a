"""Raw sources as Beam transforms: the readers of `readers/` run inside the pipeline.

Shared by the prepare pipeline and the TFDS builders. Each interaction part
(file) is read by one worker, streaming; parts are read side by side. Every
record carries its `order`, its place in the raw files (part index, then
position in the part), which decides ties exactly as file order does.

A bad record never escapes a worker as an exception (runners wrap or reprint
those): under `skip` it is counted per file, and one that stops the job, under
`error` or a missing file under either mode, ends its part and comes out as
the `BadRecordError` itself (output FAILURE), with a key saying where it was
met, for the driver to raise. Each part's counts come out as one dict (output
COUNTS): records read and `bad_records_skipped/<file name>`, to be summed.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import apache_beam as beam

from sllmr_tf import errors, fileio
from sllmr_tf.data.records import BadRecordPolicy, ItemInfo, RawSource
from sllmr_tf.errors import BadRecordError

COUNTS = "counts"
FAILURE = "failure"
PART_BITS = 40  # order = part index << PART_BITS | position in the part
PROGRESS_EVERY = 1_000_000
ITEMS_STAGE, INTERACTIONS_STAGE = 0, 1  # failures of the item table are met first, as a reader would


def order_of(part: int, position: int) -> int:
    return part << PART_BITS | position


class ReadInteractions(beam.PTransform):
    """Every raw interaction as (order, (user, item, rating, timestamp)); outputs `records`,
    COUNTS ({"interactions_read": n, "ids_stripped": n, ...}) and FAILURE ((key, BadRecordError))."""

    def __init__(self, source: RawSource, on_bad_record: str, log: Callable[[str], None] | None = None):
        super().__init__()
        self.source, self.on_bad_record, self.log = source, on_bad_record, log

    def expand(self, pipeline):
        return (pipeline
                | "Parts" >> beam.Create(list(enumerate(self.source.interaction_parts())))
                | "Spread" >> beam.Reshuffle()  # one part per worker on cluster runners
                | "Read" >> beam.ParDo(_ReadPart(self.source, self.on_bad_record, self.log)).with_outputs(
                    COUNTS, FAILURE, main="records"))


class _ReadPart(beam.DoFn):
    def __init__(self, source: RawSource, on_bad_record: str, log: Callable[[str], None] | None):
        self.source, self.on_bad_record, self.log = source, on_bad_record, log

    def process(self, part: tuple[int, str]) -> Iterator:
        index, name = part
        policy = BadRecordPolicy(self.on_bad_record)
        read = 0
        try:
            for read, event in enumerate(self.source.interactions(policy, name), start=1):
                yield order_of(index, read - 1), (event.user, event.item, event.rating, event.timestamp)
                if self.log and read % PROGRESS_EVERY == 0:
                    self.log(f"  {fileio.basename(name)}: read {read:,} interactions")
        except BadRecordError as error:
            yield beam.pvalue.TaggedOutput(FAILURE, ((INTERACTIONS_STAGE, index), error))
        yield _counts("interactions_read", read, policy)


class ReadItems(beam.PTransform):
    """Every item row as (item id, (order, ItemInfo fields)); outputs `rows`, COUNTS
    ({"item_rows_read": n, ...}) and FAILURE."""

    def __init__(self, source: RawSource, on_bad_record: str):
        super().__init__()
        self.source, self.on_bad_record = source, on_bad_record

    def expand(self, pipeline):
        return (pipeline
                | "Source" >> beam.Create([self.source])
                | "Read" >> beam.ParDo(_ReadItems(self.on_bad_record)).with_outputs(COUNTS, FAILURE, main="rows"))


class _ReadItems(beam.DoFn):
    def __init__(self, on_bad_record: str):
        self.on_bad_record = on_bad_record

    def process(self, source: RawSource) -> Iterator:
        policy = BadRecordPolicy(self.on_bad_record)
        read = 0
        try:
            for read, info in enumerate(source.items(policy), start=1):
                yield info.item, (read, dataclasses.astuple(info))
        except BadRecordError as error:
            yield beam.pvalue.TaggedOutput(FAILURE, ((ITEMS_STAGE, 0), error))
        yield _counts("item_rows_read", read, policy)


def _counts(name: str, read: int, policy: BadRecordPolicy) -> beam.pvalue.TaggedOutput:
    skipped = {f"bad_records_skipped/{file_name}": count for file_name, count in policy.skipped.items()}
    return beam.pvalue.TaggedOutput(COUNTS, {name: read, "ids_stripped": policy.ids_stripped, **skipped})


class FirstItemRows(beam.PTransform):
    """(item id, ItemInfo) of the first row of each id in file order: a repeated id keeps its
    first row (real Amazon meta files repeat some)."""

    def expand(self, rows):
        return (rows
                | "First" >> beam.CombinePerKey(min)
                | "Info" >> beam.MapTuple(lambda item, first: (item, ItemInfo(*first[1]))))


class FirstFailure(beam.PTransform):
    """[the (key, UserError) with the smallest key], or [] when there is none."""

    def expand(self, failures):
        return failures | beam.combiners.Top.Smallest(1, key=lambda keyed: keyed[0])


class WriteFirstFailure(beam.PTransform):
    """Writes the first of the (key, UserError) failures to `path`, for `raise_failure`."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def expand(self, failures):
        return failures | "First" >> FirstFailure() | "Write" >> beam.Map(_write_failure, self.path)


def _write_failure(first: list, path: str) -> None:
    if first:
        error_type, args = first[0][1].__reduce__()[:2]
        fileio.write_json(path, {"type": error_type.__name__, "args": list(args)})


def raise_failure(path: str) -> None:
    """Raise the error `WriteFirstFailure` wrote to `path`, if it wrote one, in the driver.

    Raises:
        UserError: the first error the pipeline met, as the workers raised it.
    """
    failure = fileio.read_json(path)
    if failure is not None:
        raise getattr(errors, failure["type"])(*failure["args"])
