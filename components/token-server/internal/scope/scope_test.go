package scope

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
		got, err := Parse(text)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", text, got, err, want)
		}
	}
}

func TestParseScopeBad(t *testing.T) {
	for text, want := range map[string]error{
		"":                            ErrEmpty,
		"repository":                  ErrForm,
		"repository:ns/app":           ErrForm,
		"repository::pull":            ErrEmptyName,
		":ns/app:pull":                ErrResourceType,
		"Repository:ns/app:pull":      ErrResourceType,
		"repo(x:ns/app:pull":          ErrResourceType,
		"repository:ns/app:":          ErrAction,
		"repository:ns/app:pull,":     ErrAction,
		"repository:ns/app:PULL":      ErrAction,
		"repository:ns/app:pull push": ErrAction,
		"repository:ns/app:pull\n":    ErrAction,
		"repository:NS/App:pull":      ErrRepository,
		"repository:ns//app:pull":     ErrRepository,
		"repository:/ns/app:pull":     ErrRepository,
		"repository:ns/app/:pull":     ErrRepository,
		"repository:ns/-app:pull":     ErrRepository,
		"repository:" + strings.Repeat("a", 256) + ":pull":   ErrRepository,
		"repository:" + strings.Repeat("a/", 600) + "a:pull": ErrTooLong,
	} {
		if _, err := Parse(text); !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %v; want %v", text, err, want)
		}
	}
}

func TestParseScopesAcceptsRepeatedAndSpaceSeparatedValues(t *testing.T) {
	scopes, err := ParseAll([]string{"repository:a/b:pull repository:c/d:push", "registry:catalog:*", " "})
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
	if none, err := ParseAll(nil); err != nil || len(none) != 0 {
		t.Errorf("ParseAll(nil) = %v, %v", none, err)
	}
	if _, err := ParseAll([]string{"repository:a/b:pull repository:a/b"}); err == nil {
		t.Error("one bad scope among good ones must fail")
	}
}

func TestMergeScopesUnionsActionsPerResource(t *testing.T) {
	scopes, err := ParseAll([]string{"repository:a/b:pull", "repository:c/d:pull", "repository:a/b:push,pull"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Scope{{"repository", "a/b", []string{"pull", "push"}}, {"repository", "c/d", []string{"pull"}}}
	if got := Merge(scopes); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}
