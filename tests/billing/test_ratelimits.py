import pytest

from billing.errors import RateLimited, RequestTooLarge
from billing.models import RateLimit
from billing.ratelimits import (
    RateLimitRule,
    ratelimit_check,
    ratelimit_rules_for,
    ratelimit_settle,
)

T0 = 1_900_000_000_000  # a fixed "now" in ms, so the window is exact


@pytest.mark.django_db
def test_requests_past_the_rpm_wait_until_the_oldest_leaves_the_window():
    rule = RateLimitRule(key="user:1", rpm=2, tpm=None)
    ratelimit_check(scopes=[rule], tokens=10, now_ms=T0)
    ratelimit_check(scopes=[rule], tokens=10, now_ms=T0 + 20_000)

    with pytest.raises(RateLimited) as limited:
        ratelimit_check(scopes=[rule], tokens=10, now_ms=T0 + 45_000)

    assert limited.value.retry_after_seconds == 15
    assert "15" in limited.value.message
    ratelimit_check(scopes=[rule], tokens=10, now_ms=T0 + 60_001)  # the window slid


@pytest.mark.django_db
def test_tokens_past_the_tpm_wait_until_enough_tokens_leave_the_window():
    rule = RateLimitRule(key="ws:1", rpm=None, tpm=1000)
    ratelimit_check(scopes=[rule], tokens=600, now_ms=T0)
    ratelimit_check(scopes=[rule], tokens=300, now_ms=T0 + 10_000)

    with pytest.raises(RateLimited) as limited:
        ratelimit_check(scopes=[rule], tokens=500, now_ms=T0 + 30_000)

    assert limited.value.retry_after_seconds == 30  # when the 600 leave, 300 + 500 fit
    assert limited.value.scope == "ws:1"


@pytest.mark.django_db
def test_the_tokens_in_the_window_follow_entries_leaving_it():
    # The window keeps a running token sum: entries leaving must be taken off it exactly.
    rule = RateLimitRule(key="key:7", rpm=None, tpm=1000)
    for second in range(10):
        ratelimit_check(scopes=[rule], tokens=100, now_ms=T0 + second * 1000)
    with pytest.raises(RateLimited):
        ratelimit_check(scopes=[rule], tokens=1, now_ms=T0 + 59_000)

    # At +61.5 s the first two entries have left: exactly 200 tokens fit again.
    ratelimit_check(scopes=[rule], tokens=200, now_ms=T0 + 61_500)
    with pytest.raises(RateLimited) as limited:
        ratelimit_check(scopes=[rule], tokens=1, now_ms=T0 + 61_500)
    assert limited.value.retry_after_seconds == 1  # the entry of +2 s leaves at +62 s


@pytest.mark.django_db
def test_a_refused_request_is_not_counted_in_any_scope():
    tight = RateLimitRule(key="user:2", rpm=1, tpm=None)
    loose = RateLimitRule(key="ws:2", rpm=2, tpm=None)
    ratelimit_check(scopes=[tight, loose], tokens=1, now_ms=T0)
    with pytest.raises(RateLimited):
        ratelimit_check(scopes=[tight, loose], tokens=1, now_ms=T0 + 1000)

    ratelimit_check(scopes=[loose], tokens=1, now_ms=T0 + 2000)  # still one slot left


def test_the_specific_limit_beats_the_default_for_its_scope(workspace, owner):
    RateLimit.objects.create(scope="user", rpm=100)
    RateLimit.objects.create(scope="user", user=owner, rpm=5)
    RateLimit.objects.create(scope="workspace", tpm=50_000)

    rules = {r.key: r for r in ratelimit_rules_for(workspace_id=workspace.id, user_id=owner.id)}

    assert rules[f"user:{owner.id}"].rpm == 5
    assert rules[f"ws:{workspace.id}"].tpm == 50_000


def test_an_answers_expected_length_counts_only_as_far_as_every_limit_has_room():
    tight = RateLimitRule(key="key:3", rpm=None, tpm=1000)
    loose = RateLimitRule(key="ws:3", rpm=None, tpm=100_000)
    ratelimit_check(scopes=[tight], tokens=100, now_ms=T0)

    charge = ratelimit_check(scopes=[tight, loose], tokens=30, extra_tokens=4096, now_ms=T0 + 1)

    assert charge.tokens == 900  # the prompt, and the 870 tokens the tight limit has left
    with pytest.raises(RateLimited):
        ratelimit_check(scopes=[tight], tokens=1, now_ms=T0 + 2)


@pytest.mark.parametrize(("tokens", "extra"), [(110, 0), (60, 4096)])
def test_a_request_that_can_never_fit_the_limit_is_refused_as_too_large(tokens, extra):
    rule = RateLimitRule(key="key:5", rpm=None, tpm=50, label="the API key's limit")

    with pytest.raises(RequestTooLarge) as refused:
        ratelimit_check(scopes=[rule], tokens=tokens, extra_tokens=extra, now_ms=T0)

    assert "more than the API key's limit allows in a minute (50 tokens)" in refused.value.message
    ratelimit_check(scopes=[rule], tokens=50, now_ms=T0)  # nothing was counted


def test_settling_a_request_to_its_real_usage_leaves_room_for_the_next():
    rule = RateLimitRule(key="key:6", rpm=None, tpm=1000)
    first = ratelimit_check(scopes=[rule], tokens=1000, now_ms=T0)
    with pytest.raises(RateLimited):
        ratelimit_check(scopes=[rule], tokens=1000, now_ms=T0 + 1000)

    ratelimit_settle(first, tokens=40)

    ratelimit_check(scopes=[rule], tokens=960, now_ms=T0 + 2000)
    with pytest.raises(RateLimited) as limited:
        ratelimit_check(scopes=[rule], tokens=1, now_ms=T0 + 3000)
    assert limited.value.retry_after_seconds == 57  # when the settled first one leaves


def test_a_request_settled_after_it_left_the_window_changes_nothing():
    rule = RateLimitRule(key="key:8", rpm=None, tpm=1000)
    first = ratelimit_check(scopes=[rule], tokens=600, now_ms=T0)
    ratelimit_check(scopes=[rule], tokens=900, now_ms=T0 + 60_001)  # the first one left

    ratelimit_settle(first, tokens=10)

    with pytest.raises(RateLimited):
        ratelimit_check(scopes=[rule], tokens=101, now_ms=T0 + 60_002)


def test_a_users_own_limit_is_named_as_such(workspace, owner):
    RateLimit.objects.create(scope="user", user=owner, rpm=0)
    rules = ratelimit_rules_for(workspace_id=workspace.id, user_id=owner.id)

    with pytest.raises(RateLimited) as limited:
        ratelimit_check(scopes=rules, tokens=1)

    assert limited.value.message.startswith("Rate limit reached (your user limit)")
