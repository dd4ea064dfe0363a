"""The split protocol: leave-last-k-out, histories, negatives and segment definitions."""
import numpy as np
import pytest

from sllmr_tf import segments
from sllmr_tf.data import split as split_lib
from sllmr_tf.data.split import TEST, TRAIN, VALID, Events
from sllmr_tf.errors import DataError


def make_events(rows):
    user, item, ts, label = zip(*rows)
    return Events(np.array(user), np.array(item), np.array(ts), np.array(label, np.float32))


def test_last_events_of_each_user_go_to_test_then_valid():
    events = make_events([(1, 10, 5, 1), (1, 11, 1, 1), (1, 12, 3, 1), (1, 13, 4, 0), (2, 10, 7, 1)])
    splits = split_lib.leave_last_k_out(events, test_k=1, valid_k=1)
    assert splits.tolist() == [TEST, TRAIN, TRAIN, VALID, TRAIN]


def test_every_user_keeps_a_train_event_and_gives_up_valid_first():
    events = make_events([(1, 10, 1, 1), (1, 11, 2, 1), (2, 12, 1, 1)])
    splits = split_lib.leave_last_k_out(events, test_k=2, valid_k=2)
    assert splits.tolist() == [TRAIN, TEST, TRAIN]


def test_leave_last_k_out_takes_k_events():
    events = make_events([(1, i, i, 1) for i in range(1, 11)])
    splits = split_lib.leave_last_k_out(events, test_k=3, valid_k=2)
    assert splits.tolist() == [TRAIN] * 5 + [VALID] * 2 + [TEST] * 3


def test_history_holds_only_strictly_earlier_train_positives_most_recent_first():
    events = make_events([(1, 10, 1, 1), (1, 11, 2, 0), (1, 12, 3, 1), (1, 13, 3, 1), (1, 14, 9, 1)])
    splits = np.array([TRAIN, TRAIN, TRAIN, TRAIN, TEST])
    hist, hist_len = split_lib.histories(events, splits, np.array([1, 1, 1]), np.array([3, 9, 1]), length=4)
    assert hist[0].tolist() == [10, 0, 0, 0]  # same-time event 13 and negative 11 excluded
    assert hist[1].tolist() == [13, 12, 10, 0]  # the test event 14 itself never appears
    assert hist[2].tolist() == [0, 0, 0, 0]
    assert hist_len.tolist() == [1, 3, 0]


def test_history_is_capped_but_hist_len_counts_everything():
    events = make_events([(1, i, i, 1) for i in range(1, 8)])
    splits = np.full(7, TRAIN)
    hist, hist_len = split_lib.histories(events, splits, np.array([1]), np.array([100]), length=3)
    assert hist[0].tolist() == [7, 6, 5] and hist_len.tolist() == [7]


def test_sampled_negatives_never_hit_an_item_the_user_interacted_with():
    interacted = {1, 2, 3, 4, 5, 6, 7, 8}
    negatives = split_lib.sample_negatives("u1", 3, 20, interacted, 10, np.random.default_rng(0))
    assert negatives.shape == (3, 20)
    assert set(negatives.reshape(-1).tolist()) == {9, 10}


def test_negative_sampling_fails_clearly_for_a_user_who_saw_everything():
    with pytest.raises(DataError, match="user 'u1' interacted with every item"):
        split_lib.sample_negatives("u1", 1, 1, {1, 2}, 2, np.random.default_rng(0))


def test_cold_start_means_fewer_than_three_train_positives():
    assert segments.is_cold_start(np.array([0, 2, 3, 10])).tolist() == [True, True, False, False]
    assert segments.is_cold_start(2) and not segments.is_cold_start(3)


def test_long_tail_is_at_most_the_bottom_fifth_and_never_splits_ties():
    popularity = np.array([0] + [1, 1, 2, 2, 3, 5, 8, 9, 10, 12])
    tail = segments.long_tail_items(popularity)
    assert tail.tolist() == [False, True, True, False, False, False, False, False, False, False, False]
    tied = np.array([0] + [1, 1, 1, 4, 5, 6, 7, 8, 9, 10])
    assert segments.long_tail_items(tied)[1:4].all()  # the least popular value alone, even if > 20%


def test_heavy_users_are_at_most_the_top_fifth_by_train_positives_and_never_split_ties():
    counts = np.array([0] + [1, 1, 2, 2, 3, 5, 8, 9, 10, 12])
    assert np.flatnonzero(segments.heavy_users(counts)).tolist() == [9, 10]  # 10 and 12 positives
    tied = np.array([0] + [1, 2, 3, 4, 5, 6, 7, 9, 9, 9])
    assert np.flatnonzero(segments.heavy_users(tied)).tolist() == [8, 9, 10]  # the top value alone, > 20%
    assert not segments.heavy_users(counts)[0]


def test_truncation_keeps_only_the_last_train_events_of_chosen_users():
    events = make_events([(1, i, i, 1) for i in range(1, 7)] + [(2, i, i, 1) for i in range(1, 7)])
    splits = np.array([TRAIN] * 4 + [VALID, TEST] + [TRAIN] * 4 + [VALID, TEST])
    keep = split_lib.truncate_users(events, splits, np.array([2]), 2)
    assert keep[events.user == 1].all()
    cut = events.user == 2
    assert events.timestamp[cut & keep & (splits == TRAIN)].tolist() == [3, 4]
    assert keep[cut & (splits != TRAIN)].all()


def test_the_cold_user_cut_takes_exactly_the_share_of_users_with_the_smallest_hash():
    users = [f"u{k}" for k in range(200)]
    threshold = split_lib.cut_threshold(users, 0.3, seed=7)
    cut = {u for u in users if split_lib.is_cut(u, threshold, seed=7)}
    assert len(cut) == 60
    assert cut == set(sorted(users, key=lambda u: split_lib.cut_key(7, u))[:60])
    assert cut == {u for u in reversed(users) if split_lib.is_cut(u, split_lib.cut_threshold(users[::-1], 0.3, 7), 7)}
    assert cut != {u for u in users if split_lib.is_cut(u, split_lib.cut_threshold(users, 0.3, 8), 8)}
    assert split_lib.cut_threshold(users, 0.0, 7) is None and not split_lib.is_cut("u1", None, 7)
