// Package review asks the registry cluster who a token is and what its user may do.
package review

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/credentials"
	"github.com/segmented-registry/token-server/internal/ratelimit"
)

// Reviews on the registry cluster: a TokenReview (authentication.k8s.io/v1) tells who a token
// is, SubjectAccessReviews (authorization.k8s.io/v1) what that user may do. A service with
// audiences sends them as the TokenReview's spec.audiences and accepts the token only if the
// answer's status.audiences holds one of them. Authenticated TokenReview results are cached for a
// few seconds, keyed by sha256(token) and the audiences, so the many blob requests of one pull do
// not each cost a review. A token not in the cache costs a TokenReview whoever sent it, before
// any per-user limit can apply (the user is what the review finds): a server-wide token bucket
// bounds those reviews, so that a flood of random bearer tokens does not become a flood of
// TokenReviews on the API server.

const maxCacheEntries = 4096

// ReviewedUser is the user a TokenReview found, as a SubjectAccessReview names it.
type ReviewedUser struct {
	Username string              `json:"username"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups,omitempty"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

// The registry cluster not answering a review (not a denial): the review that was not answered,
// wrapping why (ErrAPIStatus, ErrNotJSON or the connection's error).
var (
	ErrTokenReview           = errors.New("TokenReview")
	ErrSubjectAccessReview   = errors.New("SubjectAccessReview")
	ErrAPIStatus             = errors.New("answered HTTP")
	ErrNotJSON               = errors.New("answered with something else than JSON")
	ErrTokenReviewsThrottled = errors.New("too many TokenReviews on this server")
)

// Throttled is a TokenReview not sent (ErrTokenReviewsThrottled): the server-wide bucket is empty
// for Wait.
type Throttled struct{ Wait time.Duration }

func (e *Throttled) Error() string {
	return fmt.Sprintf("%v; the next in %v", ErrTokenReviewsThrottled, e.Wait)
}

func (e *Throttled) Unwrap() error { return ErrTokenReviewsThrottled }

// Reviewer authenticates tokens and authorizes users.
type Reviewer interface {
	// Authenticate returns the token's user, or nil when the token is not authenticated (for
	// one of audiences, when there are any).
	Authenticate(ctx context.Context, token string, audiences []string) (*ReviewedUser, error)
	// Allowed tells whether user may do what attrs describe.
	Allowed(ctx context.Context, user *ReviewedUser, attrs access.ResourceAttributes) (bool, error)
}

// KubeReviewer is the Reviewer of a real API server.
type KubeReviewer struct {
	client  *KubeClient
	cache   *ttlCache
	limiter *ratelimit.Limiter // server-wide: one bucket (key "") for every TokenReview sent
}

// NewKubeReviewer caches authenticated TokenReviews for cacheTTL (0: no cache) and sends one only
// when limiter's server-wide bucket has a token left.
func NewKubeReviewer(client *KubeClient, cacheTTL time.Duration, limiter *ratelimit.Limiter, clock func() time.Time) *KubeReviewer {
	return &KubeReviewer{client: client, cache: newTTLCache(cacheTTL, clock), limiter: limiter}
}

// Authenticate creates a TokenReview of token (with spec.audiences = audiences, when any).
func (r *KubeReviewer) Authenticate(ctx context.Context, token string, audiences []string) (*ReviewedUser, error) {
	key := fmt.Sprintf("%s %q", credentials.Fingerprint(token), audiences)
	if user := r.cache.get(key); user != nil {
		return user, nil
	}
	if wait := r.limiter.Take("", 1); wait > 0 {
		return nil, &Throttled{Wait: wait}
	}
	spec := map[string]any{"token": token}
	if len(audiences) > 0 {
		spec["audiences"] = audiences
	}
	request := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
	var review struct {
		Status struct {
			Authenticated bool          `json:"authenticated"`
			User          *ReviewedUser `json:"user"`
			Audiences     []string      `json:"audiences"`
		} `json:"status"`
	}
	if err := r.client.Create(ctx, "/apis/authentication.k8s.io/v1/tokenreviews", request, &review); err != nil {
		// the API server does not echo the token; make sure of it (the cause is kept as text only)
		return nil, fmt.Errorf("%w: %s", ErrTokenReview, strings.ReplaceAll(err.Error(), token, "<token>"))
	}
	if !review.Status.Authenticated || review.Status.User == nil {
		return nil, nil
	}
	// an authenticator that ignores spec.audiences answers with other audiences (or none)
	if len(audiences) > 0 && !slices.ContainsFunc(review.Status.Audiences, func(a string) bool { return slices.Contains(audiences, a) }) {
		return nil, nil
	}
	r.cache.put(key, review.Status.User)
	return review.Status.User, nil
}

// Allowed creates a SubjectAccessReview for user (name, uid, groups, extra) and attrs.
func (r *KubeReviewer) Allowed(ctx context.Context, user *ReviewedUser, attrs access.ResourceAttributes) (bool, error) {
	request := map[string]any{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": struct {
			User               string                    `json:"user"`
			UID                string                    `json:"uid,omitempty"`
			Groups             []string                  `json:"groups,omitempty"`
			Extra              map[string][]string       `json:"extra,omitempty"`
			ResourceAttributes access.ResourceAttributes `json:"resourceAttributes"`
		}{user.Username, user.UID, user.Groups, user.Extra, attrs},
	}
	var review struct {
		Status struct {
			Allowed bool `json:"allowed"`
		} `json:"status"`
	}
	if err := r.client.Create(ctx, "/apis/authorization.k8s.io/v1/subjectaccessreviews", request, &review); err != nil {
		return false, fmt.Errorf("%w: %w", ErrSubjectAccessReview, err)
	}
	return review.Status.Allowed, nil
}

// ttlCache is a small thread-safe cache of reviewed users whose entries expire; keys hold no
// secret (the caller hashes the token). When full, expired entries go, and if none had expired, all.
type ttlCache struct {
	ttl   time.Duration
	clock func() time.Time
	mu    sync.Mutex
	data  map[string]cacheEntry
}

type cacheEntry struct {
	expires time.Time
	user    *ReviewedUser
}

func newTTLCache(ttl time.Duration, clock func() time.Time) *ttlCache {
	return &ttlCache{ttl: ttl, clock: clock, data: map[string]cacheEntry{}}
}

func (c *ttlCache) get(key string) *ReviewedUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	entry, ok := c.data[key]
	if !ok {
		return nil
	}
	if !c.clock().Before(entry.expires) {
		delete(c.data, key)
		return nil
	}
	return entry.user
}

func (c *ttlCache) put(key string, user *ReviewedUser) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if len(c.data) >= maxCacheEntries {
		for k, entry := range c.data {
			if !now.Before(entry.expires) {
				delete(c.data, k)
			}
		}
		if len(c.data) >= maxCacheEntries {
			clear(c.data)
		}
	}
	c.data[key] = cacheEntry{expires: now.Add(c.ttl), user: user}
}
