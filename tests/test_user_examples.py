"""The per-user step of prepare: one user's events -> that user's rows of every split."""
import numpy as np
import pytest

from sllmr_tf.data import user_examples as user_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.user_examples import UserEvents
from sllmr_tf.errors import DataError

NUM_ITEMS = 40
CONFIG = PrepareConfig(test_k=2, valid_k=1, train_negatives=2, eval_negatives=3, cold_user_train_items=2, seed=5)


def tables(long_tail=(3, 4)) -> user_lib.ItemTables:
    ids = np.array(sorted(f"i{k:02d}" for k in range(1, NUM_ITEMS + 1)), object)
    index = np.arange(NUM_ITEMS + 1)
    return user_lib.ItemTables(ids=ids, category=index % 5, brand=index % 3, popularity=index * 10,
                               long_tail=np.isin(index, long_tail))


def events(rows) -> UserEvents:
    """rows of (item number, rating, timestamp); order = position in the list."""
    return UserEvents.from_records([(f"i{item:02d}", rating, ts, order) for order, (item, rating, ts) in enumerate(rows)])


# 8 events at increasing times; item 5 is rated 2 (negative under the threshold rule)
EVENTS = events([(1, 5, 10), (2, 4, 20), (3, 5, 30), (5, 2, 40), (6, 4, 50), (7, 5, 60), (8, 4, 70), (9, 5, 80)])


def run(user_events=EVENTS, cut=False, config=CONFIG, raw_id="alice"):
    return user_lib.user_examples(raw_id, 7, user_events, cut, tables(), config)


def ids(index_array) -> list[str]:
    return [tables().ids[i - 1] for i in index_array]


def positives_of(columns) -> list[str]:
    return ids(columns["item_id"][columns["label"] > 0])


def test_the_last_events_go_to_test_then_valid_and_each_positive_gets_its_negatives():
    user = run()
    assert positives_of(user.columns["test"]) == ["i08", "i09"]
    assert positives_of(user.columns["valid"]) == ["i07"]
    assert positives_of(user.columns["train"]) == ["i01", "i02", "i03", "i06"]
    train = user.columns["train"]
    assert len(train["label"]) == 5 + 2 * 4  # 5 train events (one rated low), 2 negatives per positive
    assert len(user.columns["test"]["label"]) == 2 + 3 * 2
    assert (user.columns["train"]["user_id"] == 7).all()


def test_sampled_negatives_are_never_an_item_the_user_interacted_with_even_one_the_cut_dropped():
    user = run(cut=True)
    interacted = {f"i{k:02d}" for k in (1, 2, 3, 5, 6, 7, 8, 9)}
    for name, columns in user.columns.items():
        per_positive = CONFIG.train_negatives if name == "train" else CONFIG.eval_negatives
        sampled = columns["item_id"][-per_positive * len(positives_of(columns)):]  # after the split's events
        assert (columns["label"][-len(sampled):] == 0).all()
        assert not set(ids(sampled)) & interacted


def test_the_cut_keeps_only_the_last_train_events_and_every_held_out_event():
    user = run(cut=True)
    assert positives_of(user.columns["train"]) == ["i06"]  # the last 2 train events: i05 (low) and i06
    assert positives_of(user.columns["test"]) == ["i08", "i09"]
    assert user.is_cold and (user.columns["test"]["is_cold_user"] == 1).all()
    assert not run().is_cold


def test_histories_hold_only_strictly_earlier_train_positives_most_recent_first():
    user = run(events([(1, 5, 10), (2, 5, 20), (3, 5, 20), (4, 2, 25), (6, 5, 30), (7, 5, 40), (8, 5, 50)]))
    train = user.columns["train"]
    times = dict(zip(ids(train["item_id"]), train["hist_len"]))
    assert times["i01"] == 0 and times["i02"] == 1 and times["i03"] == 1  # i02 and i03 share a time
    test = user.columns["test"]  # i07, i08; valid: i06; train: i01-i04
    for row in range(len(test["label"])):
        hist = test["hist_item_ids"][row]
        assert ids(hist[hist > 0]) == ["i03", "i02", "i01"]  # no valid event, not the low-rated i04
        assert test["hist_len"][row] == 3
    assert ids(user.train_items) == ["i01", "i02", "i03"]


def test_segment_tags_and_item_features_come_from_the_tables():
    user = run()
    t = tables()
    for columns in user.columns.values():
        item = columns["item_id"]
        np.testing.assert_array_equal(columns["is_longtail_item"], t.long_tail[item].astype(int))
        np.testing.assert_array_equal(columns["item_pop"], t.popularity[item])
        np.testing.assert_array_equal(columns["item_category"], t.category[item])
        np.testing.assert_array_equal(columns["hist_item_categories"],
                                      t.category[columns["hist_item_ids"]] * (columns["hist_item_ids"] > 0))


def test_a_repeated_item_keeps_its_latest_event_at_the_place_of_its_first():
    merged = user_lib.latest_events(events([(1, 5, 10), (2, 1, 30), (3, 5, 20), (2, 5, 25), (2, 4, 30)]))
    assert merged.items.tolist() == ["i01", "i02", "i03"]
    assert merged.ratings.tolist() == [5, 4, 5]  # the later of the two events at time 30
    assert merged.timestamps.tolist() == [10, 30, 20] and merged.order.tolist() == [0, 1, 2]


def test_the_same_user_gives_the_same_rows_whatever_order_the_events_arrive_in():
    first = run()
    shuffled = EVENTS.take(np.random.default_rng(1).permutation(len(EVENTS)))
    again = run(shuffled)
    for split in first.columns:
        for name, column in first.columns[split].items():
            np.testing.assert_array_equal(column, again.columns[split][name])
        np.testing.assert_array_equal(first.sort_keys[split], again.sort_keys[split])
    other_seed = run(config=PrepareConfig(**{**CONFIG.__dict__, "seed": 6}))
    other_user = run(raw_id="bob")
    for changed in (other_seed, other_user):
        assert not np.array_equal(first.columns["train"]["item_id"], changed.columns["train"]["item_id"])


def test_a_user_who_interacted_with_every_item_is_refused_by_name():
    every = events([(k, 5, k) for k in range(1, NUM_ITEMS + 1)])
    with pytest.raises(DataError, match="user 'alice' interacted with every item"):
        run(every)
