// Package scope parses the scopes of the distribution token specification.
package scope

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Scopes as the distribution token specification writes them:
// <type>[(<class>)]:<name>:<action>[,<action>...], e.g. repository:myproject/app:pull,push.

// distribution/reference: path components joined by "/", each lower-case alphanumerics with
// single separators ("." "_" "__" or dashes), optionally preceded by a host[:port] component.
const (
	pathComponent       = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
	hostComponent       = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	maxRepositoryLength = 255 // distribution's limit on a repository name
	maxScopeLength      = 1024
)

var (
	repositoryRE = regexp.MustCompile(`^(?:` + hostComponent + `(?:\.` + hostComponent + `)*(?::[0-9]+)?/)?` +
		pathComponent + `(?:/` + pathComponent + `)*$`)
	typeRE   = regexp.MustCompile(`^[a-z0-9]+(?:\([a-z0-9]+\))?$`)
	actionRE = regexp.MustCompile(`^(?:\*|[a-z]+)$`)
)

// What makes a scope parameter not follow the token specification's grammar. The texts are
// parts of the message a client reads (INVALID_SCOPE), which names the scope and the faulty part.
var (
	ErrEmpty        = errors.New("empty scope")
	ErrTooLong      = errors.New("scope too long")
	ErrForm         = errors.New("is not of the form type:name:actions")
	ErrResourceType = errors.New("has an invalid resource type")
	ErrEmptyName    = errors.New("has an empty resource name")
	ErrAction       = errors.New("has an invalid action")
	ErrRepository   = errors.New("names an invalid repository")
)

// Scope is one requested resource scope.
type Scope struct {
	Type    string
	Name    string
	Actions []string
}

func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Parse parses one scope. The name may itself contain ":" (a host:port/ prefix), so the
// type is everything before the first colon and the actions everything after the last one. The
// resource class (as in repository(plugin)) is dropped, repeated actions are kept once, and a
// repository name must be a valid distribution repository name.
func Parse(text string) (Scope, error) {
	if text == "" {
		return Scope{}, ErrEmpty
	}
	if len(text) > maxScopeLength {
		return Scope{}, ErrTooLong
	}
	first, last := strings.Index(text, ":"), strings.LastIndex(text, ":")
	if first < 0 || first == last {
		return Scope{}, fmt.Errorf("scope %q %w", text, ErrForm)
	}
	rtype, name, actionText := text[:first], text[first+1:last], text[last+1:]
	if !typeRE.MatchString(rtype) {
		return Scope{}, fmt.Errorf("scope %q %w %q", text, ErrResourceType, rtype)
	}
	rtype, _, _ = strings.Cut(rtype, "(")
	if name == "" {
		return Scope{}, fmt.Errorf("scope %q %w", text, ErrEmptyName)
	}
	var actions []string
	for _, action := range strings.Split(actionText, ",") {
		if !actionRE.MatchString(action) {
			return Scope{}, fmt.Errorf("scope %q %w %q", text, ErrAction, action)
		}
		actions = appendNew(actions, action)
	}
	if rtype == "repository" && (len(name) > maxRepositoryLength || !repositoryRE.MatchString(name)) {
		return Scope{}, fmt.Errorf("scope %q %w %q", text, ErrRepository, name)
	}
	return Scope{Type: rtype, Name: name, Actions: actions}, nil
}

// ParseAll parses every scope value of a request; each value may hold several scopes
// separated by spaces.
func ParseAll(values []string) ([]Scope, error) {
	var scopes []Scope
	for _, value := range values {
		for _, part := range strings.Split(value, " ") {
			if part == "" {
				continue
			}
			scope, err := Parse(part)
			if err != nil {
				return nil, err
			}
			scopes = append(scopes, scope)
		}
	}
	return scopes, nil
}

// Merge unions the actions of scopes naming the same resource, in first-seen order.
func Merge(scopes []Scope) []Scope {
	type resource struct{ rtype, name string }
	index := map[resource]int{}
	var merged []Scope
	for _, scope := range scopes {
		key := resource{scope.Type, scope.Name}
		i, seen := index[key]
		if !seen {
			i = len(merged)
			index[key] = i
			merged = append(merged, Scope{Type: scope.Type, Name: scope.Name})
		}
		for _, action := range scope.Actions {
			merged[i].Actions = appendNew(merged[i].Actions, action)
		}
	}
	return merged
}

// appendNew appends value unless list already holds it.
func appendNew(list []string, value string) []string {
	if slices.Contains(list, value) {
		return list
	}
	return append(list, value)
}
