"""oci.tokens: a token goes with the requests it covers, the one with the fewest resources first,
and many repositories' requests are grouped so that each token holds few scopes where many
requests carry it (token_groups)."""

import threading
import time

from ansible_collections.segmented.registry.plugins.module_utils.oci.tokens import TokenCache, token_groups


def scopes(*repositories, actions="pull"):
    return [f"repository:{repo}:{actions}" for repo in repositories]


def test_the_covering_token_with_the_fewest_resources_is_taken():
    cache = TokenCache()
    later = time.monotonic() + 300
    cache.add(scopes("ns/a", "ns/b", "ns/c"), "three", later)
    cache.add(scopes("ns/a", "ns/b"), "two", later)
    cache.add(scopes("ns/x"), "other", later)
    assert cache.cached(scopes("ns/a")) == "two"
    assert cache.cached(scopes("ns/c")) == "three"
    assert cache.cached(scopes("ns/a", "ns/c")) == "three"
    assert cache.cached(scopes("ns/a", actions="pull,push")) is None
    # with most=1 only a token of one resource will do
    assert cache.cached(scopes("ns/a"), most=1) is None
    assert cache.cached(scopes("ns/a"), most=2) == "two"


def test_an_expired_token_is_never_taken():
    cache = TokenCache()
    cache.add(scopes("ns/a"), "gone", time.monotonic() - 1)
    cache.add(scopes("ns/a", "ns/b"), "live", time.monotonic() + 300)
    assert cache.cached(scopes("ns/a")) == "live"


def test_get_with_most_fetches_a_narrower_token_once_for_many_threads():
    cache = TokenCache()
    cache.add(scopes("ns/a", "ns/b", "ns/c"), "wide", time.monotonic() + 300)
    fetched = []

    def fetch():
        time.sleep(0.05)
        fetched.append(1)
        cache.add(scopes("ns/a", "ns/b"), "narrow", time.monotonic() + 300)
        return "narrow"

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(scopes("ns/a", "ns/b"), fetch, most=2)))
               for _thread in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["narrow"] * 6 and len(fetched) == 1
    # without most, the wide token that was there would have done
    assert cache.cached(scopes("ns/c")) == "wide"


def test_token_groups_fill_each_token_up_to_its_requests_or_scopes():
    requests = {"ns/e": 300, "ns/a": 150, "ns/b": 30, "ns/c": 30, "ns/d": 30}
    # sorted; a group closes before the repository that would take it over 200 requests
    assert token_groups(requests, 200, 40) == [["ns/a", "ns/b"], ["ns/c", "ns/d"], ["ns/e"]]
    # and before the scope that would make it more than `most`
    assert token_groups({f"ns/r{i}": 1 for i in range(5)}, 200, 2) == [["ns/r0", "ns/r1"], ["ns/r2", "ns/r3"], ["ns/r4"]]
    # a repository without requests still gets a group (its token is not fetched unless asked)
    assert token_groups({"ns/a": 0}, 200, 40) == [["ns/a"]]
    assert token_groups({}, 200, 40) == []
