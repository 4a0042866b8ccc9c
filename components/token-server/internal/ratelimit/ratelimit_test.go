package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/testkit"
)

func TestLimiterTakesRefillsAndSaysWhenToRetry(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1000, 0))
	limiter := New(2, 10, clock.Now) // 2 a second, 10 at once
	if wait := limiter.Take("alice", 10); wait != 0 {
		t.Fatalf("a new user starts with the burst: wait %v", wait)
	}
	if wait := limiter.Take("alice", 3); wait != 1500*time.Millisecond {
		t.Errorf("empty, 3 needed at 2/s: wait %v, want 1.5s", wait)
	}
	if wait := limiter.Take("bob", 10); wait != 0 {
		t.Errorf("each user has a bucket of their own: wait %v", wait)
	}
	clock.Advance(time.Second)
	if wait := limiter.Take("alice", 3); wait != 500*time.Millisecond {
		t.Errorf("2 refilled, 3 needed (a refused take takes nothing): wait %v", wait)
	}
	if wait := limiter.Take("alice", 2); wait != 0 {
		t.Errorf("2 refilled, 2 taken: wait %v", wait)
	}
	clock.Advance(time.Hour)
	if wait := limiter.Take("alice", 10); wait != 0 {
		t.Errorf("refills up to the burst: wait %v", wait)
	}
	if wait := limiter.Take("alice", 1); wait == 0 {
		t.Error("refilled beyond the burst")
	}
}

func TestLimiterDropsFullBucketsWhenItHoldsMany(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1000, 0))
	limiter := New(1, 5, clock.Now)
	for n := range maxBuckets {
		limiter.Take(fmt.Sprint("user-", n), 1)
	}
	limiter.Take("busy", 5)
	clock.Advance(time.Second) // the others are full again, busy is not
	limiter.Take("newcomer", 1)
	if len(limiter.buckets) != 2 {
		t.Errorf("%d buckets kept, want busy and newcomer", len(limiter.buckets))
	}
	if wait := limiter.Take("busy", 5); wait == 0 {
		t.Error("a bucket that was not full was dropped: its user got a new burst")
	}
}
