package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmented-registry/copier/internal/keyed"
)

// Username is the user name the copier presents to a token realm; the password is the token file.
const Username = "segmented-registry"

// ErrToken is the kind of a failed token request.
var ErrToken = errors.New("token request failed")

// challenge is one WWW-Authenticate challenge: its scheme (lower case) and parameters.
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads the WWW-Authenticate headers of a response (RFC 7235: a scheme, then
// name=value or name="quoted value" pairs separated by commas).
func parseChallenges(h http.Header) []challenge {
	var out []challenge
	for _, value := range h.Values("WWW-Authenticate") {
		s := strings.TrimSpace(value)
		for s != "" {
			sp := strings.IndexAny(s, " \t")
			scheme := s
			if sp >= 0 {
				scheme, s = s[:sp], strings.TrimLeft(s[sp:], " \t")
			} else {
				s = ""
			}
			c := challenge{scheme: strings.ToLower(strings.TrimSuffix(scheme, ",")), params: map[string]string{}}
			for s != "" {
				eq := strings.IndexByte(s, '=')
				if eq < 0 {
					break
				}
				name := strings.ToLower(strings.TrimSpace(s[:eq]))
				if strings.ContainsAny(name, " \t,") { // a new challenge's scheme
					break
				}
				s = strings.TrimLeft(s[eq+1:], " \t")
				var val string
				if strings.HasPrefix(s, `"`) {
					var b strings.Builder
					i := 1
					for ; i < len(s) && s[i] != '"'; i++ {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						}
						b.WriteByte(s[i])
					}
					val = b.String()
					if i < len(s) {
						i++
					}
					s = s[i:]
				} else {
					end := strings.IndexByte(s, ',')
					if end < 0 {
						end = len(s)
					}
					val, s = strings.TrimSpace(s[:end]), s[end:]
				}
				c.params[name] = val
				s = strings.TrimLeft(s, " \t")
				if strings.HasPrefix(s, ",") {
					s = strings.TrimLeft(s[1:], " \t")
				}
			}
			out = append(out, c)
		}
	}
	return out
}

// tokens fetches and caches bearer tokens: the challenge's realm (rewritten by the realm map)
// is asked with HTTP Basic credentials, the password being the token file's content, read at
// each token request (a projected service account token is renewed in place).
type tokens struct {
	client    *http.Client
	host      string // the registry's host[:port]: a realm on its host gets the credential unmapped
	realms    map[string]string
	tokenFile string
	clock     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken // realm, service and scopes -> token
	busy  keyed.Mutexes[string]  // the same key -> held while its token is asked for
}

type cachedToken struct {
	token   string
	expires time.Time
}

// tokenMargin: a cached token this close to its expiry is not used any more.
const tokenMargin = 30 * time.Second

func tokenKey(realm, service string, scopes []string) string {
	return realm + "\x00" + service + "\x00" + strings.Join(scopes, " ")
}

func normalise(scopes []string) []string {
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

func (t *tokens) cached(realm, service string, scopes []string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.cache[tokenKey(realm, service, scopes)]
	if ok && t.clock().Add(tokenMargin).Before(c.expires) {
		return c.token
	}
	return ""
}

// get returns a token for scopes: the cached one unless fresh, else a new one. Requests for the
// same key wait for one another, so that images and blobs starting together ask once.
func (t *tokens) get(ctx context.Context, realm, service string, scopes []string, fresh bool) (string, error) {
	key := tokenKey(realm, service, scopes)
	defer t.busy.Lock(key)()
	if !fresh {
		if token := t.cached(realm, service, scopes); token != "" {
			return token, nil
		}
	}
	return t.fetch(ctx, realm, service, scopes)
}

// mapRealm: the URL to use for a challenge's realm (exact match in the map, else the realm).
func (t *tokens) mapRealm(realm string) string {
	if to, ok := t.realms[realm]; ok {
		return to
	}
	return realm
}

func (t *tokens) password() (string, error) {
	data, err := os.ReadFile(t.tokenFile)
	if err != nil {
		return "", fmt.Errorf("token_file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// fetch asks realm for a token of scopes. Errors name the realm and the scopes and carry the
// token endpoint's own message, never a credential.
func (t *tokens) fetch(ctx context.Context, realm, service string, scopes []string) (string, error) {
	target := t.mapRealm(realm)
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: realm %q is not an http(s) URL (map it in realms)", ErrToken, target)
	}
	// the credential goes only where the plan says (a mapped realm) or to the registry's own host,
	// as the Python engine's check_realm: a challenge naming another host gets nothing
	if _, mapped := t.realms[realm]; !mapped && !strings.EqualFold(u.Hostname(), hostname(t.host)) {
		return "", fmt.Errorf("%w: registry %s names the token realm %s, neither on its own host nor in the plan's realms: "+
			"the credential is not sent there (map the realm in realms)", ErrToken, t.host, withoutQuery(u))
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	password, err := t.password()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	req.SetBasicAuth(Username, password)
	where := fmt.Sprintf("token realm %s", withoutQuery(u))
	if target != realm {
		where += fmt.Sprintf(" (for realm %s)", realm)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return "", &Error{Doing: "token request to " + where + " for " + strings.Join(scopes, " "), Err: transportCause(err), kind: ErrToken}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Doing: "token request to " + where + " for " + strings.Join(scopes, " "), Status: resp.StatusCode,
			Detail: detail(resp, body), kind: ErrToken}
	}
	var answer struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", fmt.Errorf("%w: %s answered no JSON token", ErrToken, where)
	}
	token := answer.Token
	if token == "" {
		token = answer.AccessToken
	}
	if token == "" {
		return "", fmt.Errorf("%w: %s answered no token", ErrToken, where)
	}
	ttl := time.Duration(answer.ExpiresIn) * time.Second
	if answer.ExpiresIn <= 0 {
		ttl = 60 * time.Second // the token specification's default
	}
	t.mu.Lock()
	t.cache[tokenKey(realm, service, scopes)] = cachedToken{token: token, expires: t.clock().Add(ttl)}
	t.mu.Unlock()
	return token, nil
}

func withoutQuery(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}

// hostname is host[:port] without the port.
func hostname(hostport string) string {
	if u, err := url.Parse("//" + hostport); err == nil {
		return u.Hostname()
	}
	return hostport
}
