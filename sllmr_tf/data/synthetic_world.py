"""A seeded, Amazon-like synthetic world whose true preferences are known.

Real data never says whether an LLM's "a over b" was right; this world does.
Every user and item has latent factors and a bias; the true affinity of user u
for item i is

    logit(u, i) = user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]

and every observed rating comes from a noisy utility `logit + noise_scale * G`
with G standard Gumbel, cut into 1-5 stars. Because the difference of two
independent Gumbel draws is logistic, the probability that the user's noisy
utility for a exceeds that for b is exactly
`sigmoid((logit(u, a) - logit(u, b)) / noise_scale)`: `GroundTruth.prob_prefers`.

The shape follows Amazon review data: Zipf-like item popularity (a long tail),
heavy-tailed user activity (most users with a handful of interactions, hence
cold-start users under leave-last-out, a few heavy users), exposure biased by
popularity and by preference, categories and brands that carry signal, and item
titles whose descriptive words follow the item's latent factors so a text model
has something to read.
"""
from __future__ import annotations

import dataclasses
import io
import json
from typing import Sequence

import numpy as np

from sllmr_tf import fileio
from sllmr_tf.errors import ArtifactError, BadRecordError, ConfigError

# Leaf categories of an Amazon "Sports & Outdoors"-like catalogue, each with its product nouns.
CATALOGUE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Hiking", ("hiking backpack", "trekking poles", "hiking boots", "daypack", "hydration bladder")),
    ("Camping", ("camping tent", "sleeping bag", "camp stove", "camping lantern", "hammock")),
    ("Cycling", ("bike helmet", "bike light", "cycling gloves", "bike saddle", "floor pump")),
    ("Fitness", ("yoga mat", "dumbbell set", "resistance bands", "kettlebell", "jump rope")),
    ("Running", ("running shoes", "running belt", "phone armband", "headlamp", "compression socks")),
    ("Fishing", ("fishing rod", "spinning reel", "tackle box", "fishing line", "lure set")),
    ("Swimming", ("swim goggles", "swim cap", "kickboard", "swim fins", "ear plugs")),
    ("Climbing", ("climbing harness", "chalk bag", "locking carabiner", "belay device", "climbing rope")),
    ("Water Sports", ("kayak paddle", "life vest", "dry bag", "snorkel set", "paddle board")),
    ("Winter Sports", ("ski goggles", "snowboard gloves", "base layer", "ski helmet", "hand warmers")),
    ("Team Sports", ("soccer ball", "basketball", "shin guards", "training cones", "goalkeeper gloves")),
    ("Racquet Sports", ("tennis racket", "badminton set", "pickleball paddle", "squash balls", "grip tape")),
    ("Golf", ("golf balls", "golf glove", "rangefinder", "putting mat", "golf umbrella")),
    ("Hunting", ("trail camera", "binoculars", "blind chair", "game bag", "scent spray")),
    ("Skating", ("skateboard", "inline skates", "knee pads", "skate tool", "longboard wheels")),
    ("Boxing", ("boxing gloves", "hand wraps", "heavy bag", "speed bag", "mouth guard")),
)

# Descriptive words; each gets a direction in latent space and items take the words
# their factors point to, so titles carry preference signal.
DESCRIPTORS: tuple[str, ...] = (
    "lightweight", "waterproof", "durable", "compact", "insulated", "breathable", "ergonomic",
    "ultralight", "rugged", "heavy-duty", "foldable", "adjustable", "reflective", "quick-dry",
    "padded", "portable", "professional", "beginner-friendly", "vintage", "eco-friendly",
    "stainless", "carbon", "thermal", "ventilated", "non-slip", "anti-fog", "cushioned",
    "rechargeable", "tactical", "minimalist", "high-visibility", "windproof", "shock-absorbing",
    "all-weather", "low-profile", "extra-large", "kids", "women's", "men's", "travel",
    "competition", "recycled", "hybrid", "modular", "oversized", "slim", "two-tone", "classic",
)

_BRAND_HEADS = ("North", "Trail", "Summit", "Peak", "River", "Iron", "Swift", "Blue", "Wild",
                "Storm", "Alpine", "Coast", "Stone", "Eagle", "Pine", "Bear", "Red", "Silver")
_BRAND_TAILS = ("blazer", "craft", "line", "gear", "works", "tek", "ridge", "wave", "path",
                "forge", "fit", "ward", "field", "motion")

_EPOCH_START = 1_388_534_400  # 2014-01-01 UTC: user histories start within the following two years
_SECONDS_PER_DAY = 86_400


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world; the same config always gives the same world."""

    num_users: int = 2000
    num_items: int = 1000
    num_categories: int = 12
    num_brands: int = 60
    latent_dim: int = 16
    seed: int = 0
    # Item popularity: weight of the item at popularity rank r is r ** -popularity_exponent.
    popularity_exponent: float = 1.0
    # User activity: log-normal number of interactions, at least min_interactions.
    activity_median: float = 5.0
    activity_sigma: float = 1.2
    min_interactions: int = 3
    max_interactions: int = 200
    # Exposure: log P(user sees item) = log popularity + exposure_preference * logit + Gumbel.
    exposure_preference: float = 1.0
    # Strength of the user-item factor term and of the biases in the true logit.
    preference_strength: float = 2.5
    user_bias_std: float = 0.5
    item_bias_std: float = 0.5
    brand_bias_std: float = 0.3
    # Scale of the Gumbel rating noise: the temperature of prob_prefers.
    noise_scale: float = 1.0
    # Share of 1..5-star ratings among interactions (ratings >= 4 are positives).
    rating_shares: tuple[float, ...] = (0.08, 0.08, 0.16, 0.26, 0.42)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise WorldConfigError(f.name, f"expected an integer, got {value!r}")
            if f.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise WorldConfigError(f.name, f"expected a number, got {value!r}")
        shares = self.rating_shares
        checks = {
            "num_users": self.num_users >= 1,
            "num_items": self.num_items >= 2,
            "num_categories": 1 <= self.num_categories <= len(CATALOGUE),
            "num_brands": 1 <= self.num_brands <= len(_BRAND_HEADS) * len(_BRAND_TAILS),
            "latent_dim": self.latent_dim >= 1,
            "min_interactions": 1 <= self.min_interactions <= self.max_interactions,
            "max_interactions": self.max_interactions <= self.num_items,
            "activity_median": self.activity_median > 0,
            "noise_scale": self.noise_scale > 0,
            "rating_shares": (isinstance(shares, (tuple, list)) and len(shares) == 5
                              and all(isinstance(x, (int, float)) and x > 0 for x in shares)),
        }
        for name, ok in checks.items():
            if not ok:
                raise WorldConfigError(name, f"invalid value {getattr(self, name)!r}")
        object.__setattr__(self, "rating_shares", tuple(float(x) for x in shares))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


class WorldConfigError(ConfigError):
    """An invalid world config value; names the field."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        super().__init__(f"world config field {field!r}: {reason}")


def load_config(path: str) -> WorldConfig:
    """A world config from a JSON file (as `WorldConfig.to_json` writes it); bad input names the field."""
    if not fileio.exists(path):
        raise BadRecordError(path, None, None, "file not found")
    try:
        values = json.loads(fileio.read_text(path).lstrip("\ufeff"))
    except ValueError as e:
        raise BadRecordError(path, None, None, f"cannot read world config ({e})") from None
    if not isinstance(values, dict):
        raise BadRecordError(path, None, None, "expected a JSON object of world config fields")
    known = {f.name for f in dataclasses.fields(WorldConfig)}
    for key in values:
        if key not in known:
            raise BadRecordError(path, None, key, f"unknown world config field; known: {sorted(known)}")
    try:
        return WorldConfig(**values)
    except WorldConfigError as e:
        raise BadRecordError(path, None, e.field, e.reason) from None


def config_path(raw_dir: str) -> str:
    """Where a raw dir keeps its world config."""
    return fileio.join(raw_dir, "world.json")


class GroundTruth:
    """True preferences and exposure of a world, addressed by row index (ids[k] is row k).

    In a freshly generated world rows follow the world's own id order; `save`
    realigns them to a dataset's vocabularies so that row k is vocab index k
    (row 0, the padding slot, has zero factors, biases and log popularity).

    Two truths a teacher can know: the user's *preference* (which of two items
    the user's noisy utility ranks higher, `prob_prefers`) and the *propensity*
    (which of two items the user is likelier to interact with and like, the
    event the recommender is evaluated on, `prob_more_likely_positive`).
    """

    def __init__(self, user_ids: Sequence[str], item_ids: Sequence[str],
                 user_factors: np.ndarray, item_factors: np.ndarray,
                 user_bias: np.ndarray, item_bias: np.ndarray,
                 noise_scale: float, rating_cuts: np.ndarray,
                 item_log_popularity: np.ndarray, exposure_preference: float):
        self.user_ids = np.asarray(user_ids, dtype=str)
        self.item_ids = np.asarray(item_ids, dtype=str)
        self.user_factors = np.asarray(user_factors, np.float32)
        self.item_factors = np.asarray(item_factors, np.float32)
        self.user_bias = np.asarray(user_bias, np.float32)
        self.item_bias = np.asarray(item_bias, np.float32)
        self.noise_scale = float(noise_scale)
        self.rating_cuts = np.asarray(rating_cuts, np.float64)  # utility thresholds of 2..5 stars
        self.item_log_popularity = np.asarray(item_log_popularity, np.float64)  # the exposure weight
        self.exposure_preference = float(exposure_preference)

    def preference_logit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """True affinity of users[k] for items[k] (index arrays, broadcast together)."""
        users, items = np.broadcast_arrays(np.asarray(users), np.asarray(items))
        dot = np.einsum("...d,...d->...", self.user_factors[users].astype(np.float64),
                        self.item_factors[items].astype(np.float64))
        return self.user_bias[users].astype(np.float64) + self.item_bias[items] + dot

    def logit_matrix(self, users: np.ndarray) -> np.ndarray:
        """True affinity of each of `users` for every item: [len(users), num rows of items]."""
        users = np.asarray(users)
        dot = self.user_factors[users].astype(np.float64) @ self.item_factors.T.astype(np.float64)
        return self.user_bias[users].astype(np.float64)[:, None] + self.item_bias[None, :] + dot

    def prob_prefers(self, users: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """P(the user's noisy utility for a exceeds that for b), exact under the world's noise."""
        diff = self.preference_logit(users, a) - self.preference_logit(users, b)
        return _sigmoid(diff / self.noise_scale)

    def prob_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(rating >= 4) were the user to rate the item (Gumbel survival at the 4-star cut)."""
        z = (self.rating_cuts[2] - self.preference_logit(users, items)) / self.noise_scale
        return -np.expm1(-np.exp(-z))

    def propensity_logit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """log P(the user interacts with the item and rates it >= 4), up to a per-user constant.

        Exposure draws a user's items without replacement with weight
        popularity x exp(exposure_preference x logit); while an item's share of the
        user's weight is small, its chance to be drawn is proportional to its weight,
        so the log probability of a positive interaction is log popularity +
        exposure_preference x logit + log P(rating >= 4).
        """
        users, items = np.broadcast_arrays(np.asarray(users), np.asarray(items))
        return (self.item_log_popularity[items] + self.exposure_preference * self.preference_logit(users, items)
                + np.log(self.prob_positive(users, items)))

    def prob_more_likely_positive(self, users: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """P(a is the user's positive interaction, given that exactly one of a and b is).

        With small interaction probabilities this is sigmoid of the difference of
        the propensity logits (Bradley-Terry): the truth of "a over b" under the
        metric the models are tested on (a held-out positive against an unseen item).
        """
        return _sigmoid(self.propensity_logit(users, a) - self.propensity_logit(users, b))

    def reindexed(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> "GroundTruth":
        """The same truth with rows in the given id order; '' (padding) gets a zero row."""
        user_rows = _rows_for(self.user_ids, user_ids, "user")
        item_rows = _rows_for(self.item_ids, item_ids, "item")

        def take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
            out = values[np.maximum(rows, 0)].copy()
            out[rows < 0] = 0
            return out

        return GroundTruth(user_ids, item_ids,
                           take(self.user_factors, user_rows), take(self.item_factors, item_rows),
                           take(self.user_bias, user_rows), take(self.item_bias, item_rows),
                           self.noise_scale, self.rating_cuts, take(self.item_log_popularity, item_rows),
                           self.exposure_preference)

    def save(self, path: str, user_ids_in_index_order: Sequence[str],
             item_ids_in_index_order: Sequence[str]) -> None:
        """Write an .npz whose row k is vocab index k (element 0 of each list is '' padding)."""
        aligned = self.reindexed(user_ids_in_index_order, item_ids_in_index_order)
        buffer = io.BytesIO()
        np.savez(buffer, user_ids=aligned.user_ids, item_ids=aligned.item_ids,
                 user_factors=aligned.user_factors, item_factors=aligned.item_factors,
                 user_bias=aligned.user_bias, item_bias=aligned.item_bias,
                 noise_scale=np.float64(aligned.noise_scale), rating_cuts=aligned.rating_cuts,
                 item_log_popularity=aligned.item_log_popularity,
                 exposure_preference=np.float64(aligned.exposure_preference))
        fileio.write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str) -> "GroundTruth":
        """The truth saved at `path`.

        Raises:
            ArtifactError: the file predates the exposure truth (prepare the world again).
        """
        with fileio.open_file(path, "rb") as f, np.load(io.BytesIO(f.read()), allow_pickle=False) as z:
            if "item_log_popularity" not in z:
                raise ArtifactError(f"{path}: written by an older sllmr-tf without the world's exposure; "
                                    "prepare the synthetic world again (sllmr-prepare --overwrite)")
            return cls(z["user_ids"], z["item_ids"], z["user_factors"], z["item_factors"],
                       z["user_bias"], z["item_bias"], float(z["noise_scale"]), z["rating_cuts"],
                       z["item_log_popularity"], float(z["exposure_preference"]))


@dataclasses.dataclass
class ItemTexts:
    """Per item (world order): the text fields an `ItemInfo` carries."""

    titles: list[str]
    categories: list[str]
    brands: list[str]
    descriptions: list[str]


@dataclasses.dataclass
class SyntheticWorld:
    """A generated world: interactions (flat arrays, sorted by user then time), item text, truth."""

    config: WorldConfig
    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray  # int64 row into user_ids, one per interaction
    items: np.ndarray  # int64 row into item_ids
    ratings: np.ndarray  # float32 1..5
    timestamps: np.ndarray  # int64 seconds, strictly increasing within each user
    item_category: np.ndarray  # int64 category row of each item
    item_brand: np.ndarray  # int64 brand row of each item
    texts: ItemTexts
    truth: GroundTruth

    @property
    def num_interactions(self) -> int:
        return int(self.users.size)


def generate_world(config: WorldConfig = WorldConfig()) -> SyntheticWorld:
    """Generate the world of `config`; fully determined by it (numpy PCG64 from config.seed)."""
    rng = np.random.default_rng(config.seed)
    n_users, n_items, d = config.num_users, config.num_items, config.latent_dim

    # Catalogue: categories of uneven size, brands that mostly stay in a home category.
    category_share = rng.dirichlet(np.full(config.num_categories, 2.0))
    item_category = rng.choice(config.num_categories, size=n_items, p=category_share)
    brand_home = rng.choice(config.num_categories, size=config.num_brands, p=category_share)
    item_brand = _pick_brands(rng, item_category, brand_home, config.num_brands)

    # Latent structure: item factors cluster around their category's centroid.
    centroids = rng.normal(0.0, 1.0 / np.sqrt(d), size=(config.num_categories, d))
    item_factors = centroids[item_category] + rng.normal(0.0, 0.6 / np.sqrt(d), size=(n_items, d))
    brand_bias = rng.normal(0.0, config.brand_bias_std, size=config.num_brands)
    item_bias = rng.normal(0.0, config.item_bias_std, size=n_items) + brand_bias[item_brand]

    # Users like one to three categories (popular ones more often) plus a personal twist.
    favourites = rng.choice(config.num_categories, size=(n_users, 3), p=category_share)
    taste_weights = rng.dirichlet(np.full(3, 0.7), size=n_users)
    user_factors = np.einsum("uk,ukd->ud", taste_weights, centroids[favourites])
    user_factors += rng.normal(0.0, 0.5 / np.sqrt(d), size=(n_users, d))
    user_factors *= config.preference_strength
    user_bias = rng.normal(0.0, config.user_bias_std, size=n_users)

    user_ids = [f"u{k:05d}" for k in range(n_users)]
    item_ids = [f"i{k:05d}" for k in range(n_items)]
    # Popularity: Zipf weights over a random order of the items.
    popularity = np.empty(n_items)
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    popularity[rng.permutation(n_items)] = ranks ** -config.popularity_exponent
    # The rating cuts depend on the utilities drawn below; they are filled in once known.
    truth = GroundTruth(user_ids, item_ids, user_factors, item_factors, user_bias, item_bias,
                        config.noise_scale, rating_cuts=np.zeros(4), item_log_popularity=np.log(popularity),
                        exposure_preference=config.exposure_preference)

    counts = _activity(rng, config)
    users, items = _expose(rng, truth, truth.item_log_popularity, counts, config.exposure_preference)

    # Ratings: noisy utility cut at the quantiles that give the configured star shares.
    utility = truth.preference_logit(users, items) + config.noise_scale * rng.gumbel(size=users.size)
    shares = np.asarray(config.rating_shares, np.float64)
    cuts = np.quantile(utility, np.cumsum(shares / shares.sum())[:-1])
    truth.rating_cuts = cuts
    ratings = (1 + np.searchsorted(cuts, utility, side="right")).astype(np.float32)

    timestamps = _timestamps(rng, counts)
    texts = _item_texts(rng, config, item_factors, item_bias, item_category, item_brand)
    return SyntheticWorld(config, user_ids, item_ids, users, items, ratings, timestamps,
                          item_category, item_brand, texts, truth)


def _pick_brands(rng: np.random.Generator, item_category: np.ndarray, brand_home: np.ndarray,
                 num_brands: int) -> np.ndarray:
    """80% of items get a brand whose home is their category (when one exists), else any brand."""
    random_brand = rng.integers(0, num_brands, size=item_category.size)
    home_choice = rng.random(item_category.size)
    # For each category, its home brands; pick one uniformly via a sorted index.
    order = np.argsort(brand_home, kind="stable")
    starts = np.searchsorted(brand_home[order], item_category, side="left")
    ends = np.searchsorted(brand_home[order], item_category, side="right")
    has_home = ends > starts
    pick = starts + np.floor(home_choice * np.maximum(ends - starts, 1)).astype(np.int64)
    home_brand = order[np.minimum(pick, num_brands - 1)]
    use_home = has_home & (rng.random(item_category.size) < 0.8)
    return np.where(use_home, home_brand, random_brand)


def _activity(rng: np.random.Generator, config: WorldConfig) -> np.ndarray:
    """Interactions per user: log-normal, so most users are light and a few are heavy."""
    z = rng.standard_normal(config.num_users)
    raw = np.exp(np.log(config.activity_median) + config.activity_sigma * z)
    return np.clip(np.round(raw), config.min_interactions, config.max_interactions).astype(np.int64)


def _expose(rng: np.random.Generator, truth: GroundTruth, log_popularity: np.ndarray,
            counts: np.ndarray, preference: float) -> tuple[np.ndarray, np.ndarray]:
    """Each user's items, drawn without replacement with P ~ popularity * exp(preference * logit).

    Gumbel top-k sampling: the k largest of (log weight + Gumbel noise) are a
    draw without replacement from the weights; done in blocks of users so
    memory stays bounded for large worlds.
    """
    n_users, n_items = len(truth.user_ids), len(truth.item_ids)
    block = max(1, 2_000_000 // n_items)
    chosen = []
    for start in range(0, n_users, block):
        rows = np.arange(start, min(start + block, n_users))
        keys = (log_popularity[None, :] + preference * truth.logit_matrix(rows)
                + rng.gumbel(size=(rows.size, n_items)))
        k = int(counts[rows].max())
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k] if k < n_items else np.argsort(-keys, axis=1)
        keep = np.arange(k)[None, :] < counts[rows][:, None]
        chosen.append(top[keep])
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    items = np.concatenate(chosen).astype(np.int64)
    # argpartition leaves each user's items in an arbitrary order that may follow the keys;
    # shuffle within users so the time order (assigned next) carries no preference signal.
    order = np.lexsort((rng.random(users.size), users))
    return users[order], items[order]


def _timestamps(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Strictly increasing times per user: a start within two years, then ~3-day gaps."""
    starts = _EPOCH_START + rng.integers(0, 730 * _SECONDS_PER_DAY, size=counts.size)
    gaps = 1 + np.floor(rng.exponential(3 * _SECONDS_PER_DAY, size=int(counts.sum()))).astype(np.int64)
    first = np.cumsum(counts) - counts
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], counts)
    return np.repeat(starts, counts) + elapsed


def _item_texts(rng: np.random.Generator, config: WorldConfig, item_factors: np.ndarray,
                item_bias: np.ndarray, item_category: np.ndarray, item_brand: np.ndarray) -> ItemTexts:
    """Titles like 'Trailblazer hiking backpack - lightweight waterproof'.

    The descriptive words are those whose latent directions best match the
    item's factors (with a little noise), and the description adds a quality
    word from the item's bias, so text predicts preference the way real titles do.
    """
    d = config.latent_dim
    directions = rng.normal(0.0, 1.0 / np.sqrt(d), size=(len(DESCRIPTORS), d))
    noise = rng.normal(0.0, 0.15, size=(item_factors.shape[0], len(DESCRIPTORS)))
    match = item_factors @ directions.T + noise
    words = np.argsort(-match, axis=1)[:, :4]
    nouns = rng.integers(0, 5, size=item_factors.shape[0])
    brand_names = _brand_names(rng, config.num_brands)
    low, high = np.quantile(item_bias, [0.25, 0.75])

    titles, categories, brands, descriptions = [], [], [], []
    for k in range(item_factors.shape[0]):
        category, category_nouns = CATALOGUE[item_category[k]]
        brand = brand_names[item_brand[k]]
        w = [DESCRIPTORS[j] for j in words[k]]
        quality = "premium" if item_bias[k] > high else "basic" if item_bias[k] < low else "standard"
        titles.append(f"{brand} {category_nouns[nouns[k]]} - {w[0]} {w[1]}")
        categories.append(category)
        brands.append(brand)
        descriptions.append(f"{quality} {category.lower()} gear; features: {', '.join(w)}")
    return ItemTexts(titles, categories, brands, descriptions)


def _brand_names(rng: np.random.Generator, count: int) -> list[str]:
    combos = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    return [combos[j] for j in rng.permutation(len(combos))[:count]]


def _rows_for(known: np.ndarray, wanted: Sequence[str], kind: str) -> np.ndarray:
    """Row of each wanted id in `known`; -1 for the padding id ''; error for an unknown id."""
    lookup = {str(v): k for k, v in enumerate(known)}
    rows = np.empty(len(wanted), np.int64)
    for k, raw in enumerate(wanted):
        if raw == "":
            rows[k] = -1
        elif raw in lookup:
            rows[k] = lookup[raw]
        else:
            raise KeyError(f"{kind} id {raw!r} (index {k}) is not in the synthetic world")
    return rows


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))

