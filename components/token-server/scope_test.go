package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseScopeGood(t *testing.T) {
	for text, want := range map[string]Scope{
		"repository:myproject/app:pull":           {"repository", "myproject/app", []string{"pull"}},
		"repository:myproject/app:pull,push":      {"repository", "myproject/app", []string{"pull", "push"}},
		"repository:myproject/app:push,pull,push": {"repository", "myproject/app", []string{"push", "pull"}},
		"repository:a/b/c-d_e.f:delete":           {"repository", "a/b/c-d_e.f", []string{"delete"}},
		"repository:localhost:5000/ns/app:pull":   {"repository", "localhost:5000/ns/app", []string{"pull"}},
		"repository(plugin):ns/app:pull":          {"repository", "ns/app", []string{"pull"}},
		"registry:catalog:*":                      {"registry", "catalog", []string{"*"}},
		"foo:bar:baz":                             {"foo", "bar", []string{"baz"}},
	} {
		got, err := ParseScope(text)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseScope(%q) = %#v, %v; want %#v", text, got, err, want)
		}
	}
}

func TestParseScopeBad(t *testing.T) {
	for _, text := range []string{
		"", "repository", "repository:ns/app", "repository::pull", ":ns/app:pull",
		"repository:ns/app:", "repository:ns/app:pull,", "repository:ns/app:PULL",
		"repository:ns/app:pull push", "Repository:ns/app:pull", "repository:NS/App:pull",
		"repository:ns//app:pull", "repository:/ns/app:pull", "repository:ns/app/:pull",
		"repository:ns/-app:pull", "repository:" + strings.Repeat("a", 256) + ":pull", "repo(x:ns/app:pull",
		"repository:ns/app:pull\n", "repository:" + strings.Repeat("a/", 600) + "a:pull",
	} {
		_, err := ParseScope(text)
		var scopeErr *ScopeError
		if !errors.As(err, &scopeErr) {
			t.Errorf("ParseScope(%q) = %v; want a ScopeError", text, err)
		}
	}
}

func TestParseScopesAcceptsRepeatedAndSpaceSeparatedValues(t *testing.T) {
	scopes, err := ParseScopes([]string{"repository:a/b:pull repository:c/d:push", "registry:catalog:*", " "})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, s := range scopes {
		texts = append(texts, s.String())
	}
	if want := []string{"repository:a/b:pull", "repository:c/d:push", "registry:catalog:*"}; !reflect.DeepEqual(texts, want) {
		t.Errorf("got %v, want %v", texts, want)
	}
	if none, err := ParseScopes(nil); err != nil || len(none) != 0 {
		t.Errorf("ParseScopes(nil) = %v, %v", none, err)
	}
	if _, err := ParseScopes([]string{"repository:a/b:pull repository:a/b"}); err == nil {
		t.Error("one bad scope among good ones must fail")
	}
}

func TestMergeScopesUnionsActionsPerResource(t *testing.T) {
	scopes, err := ParseScopes([]string{"repository:a/b:pull", "repository:c/d:pull", "repository:a/b:push,pull"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Scope{{"repository", "a/b", []string{"pull", "push"}}, {"repository", "c/d", []string{"pull"}}}
	if got := MergeScopes(scopes); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}
