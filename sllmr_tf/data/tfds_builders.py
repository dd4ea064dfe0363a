"""TensorFlow Datasets builders over the project's raw readers.

Importing this module registers:

    sllmr_amazon2014/<category>   Amazon Reviews 2014 5-core, files from the manual dir
    sllmr_amazon2018/<category>   Amazon Reviews 2018 5-core, files from the manual dir
    sllmr_amazon2023/<category>   Amazon Reviews 2023, files from the manual dir
    sllmr_movielens100k           the MovieLens-100k files bundled in the recbole wheel
    sllmr_synthetic/<size>        the seeded synthetic world

Each builder parses through the same reader `sllmr-prepare` uses (readers/),
inside the same Beam transforms (beam_sources), so there is one copy of every
parsing rule. One example per interaction, in the reader's order, joined by
item id with the first row of its item (a CoGroupByKey, so no worker holds
the item table); a single `train` split, since splitting is `prepare`'s job.
They generate with TFDS's Beam support (`_generate_examples` returns a
transform): on this machine by default (beam_runner's local runner), or on
any runner given as `DownloadConfig(beam_runner=..., beam_options=...)`, which
matters for the large Amazon categories. A bad record fails the build with
its `BadRecordError` (file, line, field). Nothing downloads: Amazon files
come from the manual dir, e.g.

    tfds.load("sllmr_amazon2014/beauty", data_dir=..., download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir="~/amazon2014")})

Every category the release publishes has a config; a renamed or new one can be
built with `tfds.builder("sllmr_amazon2014", config=AmazonConfig(name=..., category=...))`.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import apache_beam as beam
import numpy as np
import tensorflow_datasets as tfds

from sllmr_tf import fileio
from sllmr_tf.data import beam_runner, beam_sources
from sllmr_tf.data.config import RunnerConfig
from sllmr_tf.data.readers.amazon import Amazon2014, Amazon2018, Amazon2023
from sllmr_tf.data.readers.movielens import MovieLens100k
from sllmr_tf.data.readers.synthetic import SyntheticSource
from sllmr_tf.data.records import ItemInfo, RawSource

_FAILURE_FILE = "failure.json"  # in the builder's data dir while it is being generated

# The categories each release publishes (5-core files for 2014 and 2018). LLM-CF
# benchmarks Beauty, Sports_and_Outdoors and Toys_and_Games from the 2014 release.
CATEGORIES_2014 = (
    "Beauty", "Sports_and_Outdoors", "Toys_and_Games", "Amazon_Instant_Video", "Apps_for_Android",
    "Automotive", "Baby", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics", "Grocery_and_Gourmet_Food",
    "Health_and_Personal_Care", "Home_and_Kitchen", "Kindle_Store", "Movies_and_TV",
    "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies",
    "Tools_and_Home_Improvement", "Video_Games",
)
CATEGORIES_2018 = (
    "All_Beauty", "Luxury_Beauty", "Sports_and_Outdoors", "Toys_and_Games", "AMAZON_FASHION",
    "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Books", "CDs_and_Vinyl",
    "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics",
    "Gift_Cards", "Grocery_and_Gourmet_Food", "Home_and_Kitchen", "Industrial_and_Scientific",
    "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments",
    "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Prime_Pantry", "Software",
    "Tools_and_Home_Improvement", "Video_Games",
)
CATEGORIES_2023 = (
    "All_Beauty", "Beauty_and_Personal_Care", "Sports_and_Outdoors", "Toys_and_Games",
    "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Baby_Products",
    "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry",
    "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food", "Handmade_Products",
    "Health_and_Household", "Health_and_Personal_Care", "Home_and_Kitchen",
    "Industrial_and_Scientific", "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV",
    "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Software",
    "Subscription_Boxes", "Tools_and_Home_Improvement", "Unknown", "Video_Games",
)

_CITATION_AMAZON = """@inproceedings{mcauley2015image,
  title={Image-based recommendations on styles and substitutes},
  author={McAuley, Julian and Targett, Christopher and Shi, Qinfeng and van den Hengel, Anton},
  booktitle={SIGIR}, year={2015}}"""
_CITATION_MOVIELENS = """@article{harper2015movielens,
  title={The MovieLens Datasets: History and Context}, author={Harper, F. Maxwell and Konstan, Joseph A.},
  journal={ACM Transactions on Interactive Intelligent Systems}, volume={5}, number={4}, year={2015}}"""


class _ReaderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder whose examples are one reader's interactions joined with its item text."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    HOMEPAGE = ""
    CITATION = ""

    def _source(self, dl_manager: tfds.download.DownloadManager) -> RawSource:
        raise NotImplementedError

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict({
                "user_id": text, "item_id": text, "rating": np.float32, "timestamp": np.int64,
                "title": text, "category": text, "brand": text, "description": text,
            }),
            disable_shuffling=True,  # keep the reader's (chronological) order
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {"train": self._generate_examples(self._source(dl_manager))}

    def _generate_examples(self, source: RawSource) -> beam.PTransform:
        return _JoinedInteractions(source, self._failure_path())

    def _download_and_prepare(self, dl_manager: tfds.download.DownloadManager,
                              download_config: tfds.download.DownloadConfig) -> None:
        if download_config.beam_runner is None and download_config.beam_options is None:
            config = RunnerConfig()
            options = beam_runner.pipeline_options(config)
            download_config = dataclasses.replace(download_config, beam_options=options,
                                                  beam_runner=beam_runner.runner(config, options))
        super()._download_and_prepare(dl_manager, download_config)
        beam_sources.raise_failure(self._failure_path())  # TFDS then removes what was written

    def _failure_path(self) -> str:
        return fileio.join(str(self.data_dir), _FAILURE_FILE)


class _JoinedInteractions(beam.PTransform):
    """(order, example) per raw interaction: the event with the first row of its item."""

    def __init__(self, source: RawSource, failure_path: str):
        super().__init__()
        self.source, self.failure_path = source, failure_path

    def expand(self, pipeline):
        reads = pipeline | "Interactions" >> beam_sources.ReadInteractions(self.source, "error")
        item_reads = pipeline | "Items" >> beam_sources.ReadItems(self.source, "error")
        _ = ((reads[beam_sources.FAILURE], item_reads[beam_sources.FAILURE]) | "Failures" >> beam.Flatten()
             | "WriteFailure" >> beam_sources.WriteFirstFailure(self.failure_path))
        return ({"events": reads.records | "ByItem" >> beam.Map(lambda keyed: (keyed[1][1], keyed)),
                 "info": item_reads.rows | "FirstItemRows" >> beam_sources.FirstItemRows()}
                | "Join" >> beam.CoGroupByKey()
                | "Examples" >> beam.FlatMapTuple(_joined_examples))


def _joined_examples(item: str, joined: dict) -> Iterator[tuple[int, dict]]:
    info = (joined["info"] or [ItemInfo(item)])[0]
    for order, (user, _, rating, timestamp) in joined["events"]:
        yield order, {"user_id": user, "item_id": item, "rating": rating, "timestamp": timestamp,
                      "title": info.title, "category": info.category, "brand": info.brand,
                      "description": info.description}


@dataclasses.dataclass
class AmazonConfig(tfds.core.BuilderConfig):
    """One Amazon category; `category` is the name in the raw file names."""

    category: str = ""


def _amazon_configs(categories: tuple[str, ...]) -> list[AmazonConfig]:
    return [AmazonConfig(name=c.lower(), category=c, description=f"Amazon category {c}") for c in categories]


class _AmazonBuilder(_ReaderBuilder, skip_registration=True):
    READER: type = Amazon2014
    HOMEPAGE = "https://cseweb.ucsd.edu/~jmcauley/datasets.html"
    CITATION = _CITATION_AMAZON

    def _source(self, dl_manager: tfds.download.DownloadManager) -> RawSource:
        return self.READER(str(dl_manager.manual_dir), category=self.builder_config.category)


def _manual_instructions(release: str, reviews: str, meta: str) -> str:
    return (f"Download the Amazon Reviews {release} files of the category from the release page "
            f"and put them, unchanged, in the manual dir (several categories may share it):\n"
            f"  {reviews}\n  {meta}\n"
            f"The manual dir is `<data_dir>/downloads/manual/` unless "
            f"`tfds.download.DownloadConfig(manual_dir=...)` names another.")


class SllmrAmazon2014(_AmazonBuilder):
    """Amazon Reviews 2014, 5-core reviews of one category with item titles, categories, brands."""

    name = "sllmr_amazon2014"
    READER = Amazon2014
    BUILDER_CONFIGS = _amazon_configs(CATEGORIES_2014)
    MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions(
        "2014 (https://jmcauley.ucsd.edu/data/amazon/)", "reviews_<Category>_5.json.gz", "meta_<Category>.json.gz")


class SllmrAmazon2018(_AmazonBuilder):
    """Amazon Reviews 2018, 5-core reviews of one category with item titles, categories, brands."""

    name = "sllmr_amazon2018"
    READER = Amazon2018
    BUILDER_CONFIGS = _amazon_configs(CATEGORIES_2018)
    MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions(
        "2018 (https://nijianmo.github.io/amazon/)", "<Category>_5.json.gz", "meta_<Category>.json.gz")


class SllmrAmazon2023(_AmazonBuilder):
    """Amazon Reviews 2023, reviews of one category (items are parent asins) with item text."""

    name = "sllmr_amazon2023"
    READER = Amazon2023
    HOMEPAGE = "https://amazon-reviews-2023.github.io/"
    CITATION = """@article{hou2024bridging,
  title={Bridging Language and Items for Retrieval and Recommendation},
  author={Hou, Yupeng and Li, Jiacheng and He, Zhankui and Yan, An and Chen, Xiusi and McAuley, Julian},
  journal={arXiv preprint arXiv:2403.03952}, year={2024}}"""
    BUILDER_CONFIGS = _amazon_configs(CATEGORIES_2023)
    MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions(
        "2023 (https://amazon-reviews-2023.github.io/)", "<Category>.jsonl (or .jsonl.gz)",
        "meta_<Category>.jsonl (or .jsonl.gz)")


class SllmrMovielens100k(_ReaderBuilder):
    """MovieLens-100k ratings with movie titles and genres, read from the recbole wheel's files."""

    name = "sllmr_movielens100k"
    HOMEPAGE = "https://grouplens.org/datasets/movielens/100k/"
    CITATION = _CITATION_MOVIELENS

    def _source(self, dl_manager: tfds.download.DownloadManager) -> RawSource:
        return MovieLens100k()


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """A synthetic world size; `flags` are SyntheticSource's synthetic_* flags."""

    flags: tuple[tuple[str, int], ...] = ()


class SllmrSynthetic(_ReaderBuilder):
    """The seeded Amazon-like synthetic world: power-law popularity, mostly sparse users, item text."""

    name = "sllmr_synthetic"
    BUILDER_CONFIGS = [
        SyntheticConfig(name="default", description="The default world (2000 users, 1000 items)."),
        SyntheticConfig(name="small", description="A small world for quick checks (300 users, 300 items).",
                        flags=(("synthetic_users", 300), ("synthetic_items", 300))),
    ]

    def _source(self, dl_manager: tfds.download.DownloadManager) -> RawSource:
        return SyntheticSource(**dict(self.builder_config.flags))
