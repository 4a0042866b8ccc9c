package main

import (
	"errors"
	"reflect"
	"sort"
	"testing"
)

var (
	integrated = Service{Name: "integrated", Issuer: "segmented-registry-lab", NamespaceFromRepository: true}
	envTest    = Service{Name: "env-test", Issuer: "segmented-registry-lab", Namespace: "test"}
)

func mustScope(t *testing.T, text string) Scope {
	t.Helper()
	scope, err := ParseScope(text)
	if err != nil {
		t.Fatal(err)
	}
	return scope
}

func mustScopes(t *testing.T, texts ...string) []Scope {
	t.Helper()
	scopes, err := ParseScopes(texts)
	if err != nil {
		t.Fatal(err)
	}
	return scopes
}

func TestReviewAttributesNamespaceFromRepository(t *testing.T) {
	got := ReviewAttributes(mustScope(t, "repository:myproject/app:pull,push,delete,x"), integrated)
	layers := ResourceAttributes{Group: "image.openshift.io", Resource: "imagestreams", Subresource: "layers",
		Namespace: "myproject", Name: "app"}
	want := map[string]ResourceAttributes{
		"pull":   withVerb(layers, "get"),
		"push":   withVerb(layers, "update"),
		"delete": {Group: "image.openshift.io", Resource: "images", Verb: "delete"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
}

func TestReviewAttributesNestedNameAndMissingNamespace(t *testing.T) {
	pull := ReviewAttributes(mustScope(t, "repository:ns/group/app:pull"), integrated)["pull"]
	if pull.Namespace != "ns" || pull.Name != "group/app" {
		t.Errorf("got %#v", pull)
	}
	if got := ReviewAttributes(mustScope(t, "repository:app:pull"), integrated); len(got) != 0 {
		t.Errorf("a repository without a namespace segment must get nothing, got %#v", got)
	}
}

func TestReviewAttributesFixedNamespace(t *testing.T) {
	got := ReviewAttributes(mustScope(t, "repository:myproject/app:pull,push"), envTest)
	want := ResourceAttributes{Group: "image.openshift.io", Resource: "imagestreams", Subresource: "layers",
		Namespace: "test", Verb: "get"}
	if got["pull"] != want {
		t.Errorf("pull: got %#v, want %#v", got["pull"], want)
	}
	if got["push"].Verb != "update" || got["push"].Namespace != "test" || got["push"].Name != "" {
		t.Errorf("push: got %#v", got["push"])
	}
	// a single-segment repository is fine when the namespace is fixed
	if _, ok := ReviewAttributes(mustScope(t, "repository:app:pull"), envTest)["pull"]; !ok {
		t.Error("repository:app:pull must be reviewable on a fixed namespace")
	}
}

func TestReviewAttributesCatalogAndUnknownTypes(t *testing.T) {
	got := ReviewAttributes(mustScope(t, "registry:catalog:*"), integrated)
	want := map[string]ResourceAttributes{"*": {Group: "image.openshift.io", Resource: "imagestreams", Verb: "list"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	for _, text := range []string{"registry:catalog:pull", "registry:other:*", "foo:a/b:pull", "repository:a/b:*"} {
		if got := ReviewAttributes(mustScope(t, text), integrated); len(got) != 0 {
			t.Errorf("%s: got %#v, want nothing", text, got)
		}
	}
}

func TestDecideAccessGrantsOnlyAllowedActions(t *testing.T) {
	sar := newFakeReviewer([3]string{"get", "imagestreams", "myproject"})
	got, err := DecideAccess(mustScopes(t, "repository:myproject/app:pull,push", "repository:other/app:pull"), integrated, authorizeFrom(sar))
	want := []Access{{"repository", "myproject/app", []string{"pull"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v; want %#v", got, err, want)
	}
}

func TestDecideAccessPushDeleteAndCatalog(t *testing.T) {
	sar := newFakeReviewer([3]string{"get", "imagestreams", "p"}, [3]string{"update", "imagestreams", "p"},
		[3]string{"delete", "images", ""}, [3]string{"list", "imagestreams", ""})
	got, err := DecideAccess(mustScopes(t, "repository:p/app:pull,push,delete", "registry:catalog:*", "foo:p/app:pull"), integrated, authorizeFrom(sar))
	want := []Access{
		{"repository", "p/app", []string{"pull", "push", "delete"}},
		{"registry", "catalog", []string{"*"}},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v; want %#v", got, err, want)
	}
}

func TestDecideAccessFixedNamespaceAndMemoizedReviews(t *testing.T) {
	sar := newFakeReviewer([3]string{"get", "imagestreams", "test"})
	got, err := DecideAccess(mustScopes(t, "repository:a/one:pull,push", "repository:b/two:pull"), envTest, authorizeFrom(sar))
	want := []Access{{"repository", "a/one", []string{"pull"}}, {"repository", "b/two", []string{"pull"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v; want %#v", got, err, want)
	}
	// same attributes (namespace test, no name) are reviewed once: get once, update once
	var verbs []string
	for _, call := range sar.calls {
		verbs = append(verbs, call.Verb)
	}
	sort.Strings(verbs)
	if !reflect.DeepEqual(verbs, []string{"get", "update"}) {
		t.Errorf("reviews: %v", verbs)
	}
}

func TestDecideAccessNothingRequestedOrNothingAllowed(t *testing.T) {
	for _, scopes := range [][]Scope{nil, mustScopes(t, "repository:p/a:pull,push")} {
		got, err := DecideAccess(scopes, integrated, authorizeFrom(newFakeReviewer()))
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("got %#v, %v; want an empty, non-nil list (the claim is \"access\": [])", got, err)
		}
	}
}

func TestDecideAccessStopsAtAReviewError(t *testing.T) {
	calls := 0
	failing := func(ResourceAttributes) (bool, error) {
		calls++
		return false, &ReviewError{"SubjectAccessReview: down"}
	}
	_, err := DecideAccess(mustScopes(t, "repository:p/a:pull,push"), integrated, failing)
	var review *ReviewError
	if !errors.As(err, &review) || calls != 1 {
		t.Errorf("got %v after %d calls", err, calls)
	}
}
