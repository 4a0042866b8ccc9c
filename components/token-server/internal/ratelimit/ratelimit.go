// Package ratelimit holds the token buckets over the reviews the server sends.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Token buckets over the reviews the token server sends the registry cluster: one per user over
// the reviews (TokenReview and SubjectAccessReviews) sent on that user's behalf (issuer.go), and
// one server-wide over the TokenReviews of tokens not in the cache (review.go, key ""): rate per
// second, up to burst at once.

// maxBuckets bounds the buckets kept; beyond it, full buckets (users idle long enough) are dropped.
const maxBuckets = 4096

// Limiter is a set of token buckets, one per key, safe for concurrent use.
type Limiter struct {
	rate    float64
	burst   float64
	clock   func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens  float64
	updated time.Time
}

// New refills rate tokens a second up to burst; a new key starts full.
func New(rate float64, burst int, clock func() time.Time) *Limiter {
	return &Limiter{rate: rate, burst: float64(burst), clock: clock, buckets: map[string]*bucket{}}
}

// Take takes n tokens (n at most burst) from key's bucket and returns 0, or, when fewer than n
// are left, takes none and returns how long until n are.
func (l *Limiter) Take(key string, n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	b, ok := l.buckets[key]
	if !ok {
		l.prune(now)
		b = &bucket{tokens: l.burst, updated: now}
		l.buckets[key] = b
	}
	b.tokens = l.level(b, now)
	b.updated = now
	need := float64(n)
	if b.tokens >= need {
		b.tokens -= need
		return 0
	}
	return time.Duration(math.Ceil((need - b.tokens) / l.rate * float64(time.Second)))
}

func (l *Limiter) level(b *bucket, now time.Time) float64 {
	elapsed := max(now.Sub(b.updated).Seconds(), 0)
	return min(l.burst, b.tokens+elapsed*l.rate)
}

func (l *Limiter) prune(now time.Time) {
	if len(l.buckets) < maxBuckets {
		return
	}
	for key, b := range l.buckets {
		if l.level(b, now) >= l.burst {
			delete(l.buckets, key)
		}
	}
}
