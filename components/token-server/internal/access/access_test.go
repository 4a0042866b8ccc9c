package access_test

import (
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/review"
	"github.com/segmented-registry/token-server/internal/scope"
	"github.com/segmented-registry/token-server/internal/testkit/fakes"
)

var integrated, envTest = fakes.Integrated, fakes.EnvTest

func mustScope(t *testing.T, text string) scope.Scope {
	t.Helper()
	s, err := scope.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustScopes(t *testing.T, texts ...string) []scope.Scope {
	t.Helper()
	scopes, err := scope.ParseAll(texts)
	if err != nil {
		t.Fatal(err)
	}
	return scopes
}

// withVerb is attrs for verb.
func withVerb(attrs access.ResourceAttributes, verb string) access.ResourceAttributes {
	attrs.Verb = verb
	return attrs
}

func TestReviewAttributesNamespaceFromRepository(t *testing.T) {
	got := access.ReviewAttributes(mustScope(t, "repository:myproject/app:pull,push,delete,x"), integrated)
	layers := access.ResourceAttributes{Group: "image.openshift.io", Resource: "imagestreams", Subresource: "layers",
		Namespace: "myproject", Name: "app"}
	want := map[string]access.ResourceAttributes{
		"pull":   withVerb(layers, "get"),
		"push":   withVerb(layers, "update"),
		"delete": {Group: "image.openshift.io", Resource: "images", Verb: "delete"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
}

func TestReviewAttributesNestedNameAndMissingNamespace(t *testing.T) {
	pull := access.ReviewAttributes(mustScope(t, "repository:ns/group/app:pull"), integrated)["pull"]
	if pull.Namespace != "ns" || pull.Name != "group/app" {
		t.Errorf("got %#v", pull)
	}
	if got := access.ReviewAttributes(mustScope(t, "repository:app:pull"), integrated); len(got) != 0 {
		t.Errorf("a repository without a namespace segment must get nothing, got %#v", got)
	}
}

func TestReviewAttributesEnvironmentRegistry(t *testing.T) {
	got := access.ReviewAttributes(mustScope(t, "repository:myproject/app:pull,push,delete,x"), envTest)
	registry := access.ResourceAttributes{Group: "segmented.registry", Resource: "environmentregistries", Namespace: "test"}
	want := map[string]access.ResourceAttributes{
		"pull":   withVerb(registry, "pull"),
		"push":   withVerb(registry, "push"),
		"delete": withVerb(registry, "delete"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	// a single-segment repository is fine when the namespace is fixed
	if _, ok := access.ReviewAttributes(mustScope(t, "repository:app:pull"), envTest)["pull"]; !ok {
		t.Error("repository:app:pull must be reviewable on an environment registry")
	}
	catalog := access.ReviewAttributes(mustScope(t, "registry:catalog:*"), envTest)
	if !reflect.DeepEqual(catalog, map[string]access.ResourceAttributes{"*": withVerb(registry, "catalog")}) {
		t.Errorf("catalog: got %#v", catalog)
	}
	for _, text := range []string{"registry:catalog:pull", "registry:other:*", "foo:a/b:pull", "repository:a/b:*"} {
		if got := access.ReviewAttributes(mustScope(t, text), envTest); len(got) != 0 {
			t.Errorf("%s: got %#v", text, got)
		}
	}
}

func TestReviewCountIsOnePerDistinctReview(t *testing.T) {
	scopes := mustScopes(t, "repository:a/one:pull,push,delete", "repository:b/two:pull,delete", "registry:catalog:*", "foo:x:pull")
	// the integrated registry: pull and push per ImageStream (3), delete and the catalog
	// cluster-wide (2)
	if got := access.ReviewCount(scopes, integrated); got != 5 {
		t.Errorf("integrated: %d reviews, want 5", got)
	}
	// an environment registry: one review per verb, whatever the repository
	if got := access.ReviewCount(scopes, envTest); got != 4 {
		t.Errorf("environment: %d reviews, want 4", got)
	}
}

func TestReviewAttributesCatalogAndUnknownTypes(t *testing.T) {
	got := access.ReviewAttributes(mustScope(t, "registry:catalog:*"), integrated)
	want := map[string]access.ResourceAttributes{"*": {Group: "image.openshift.io", Resource: "imagestreams", Verb: "list"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	for _, text := range []string{"registry:catalog:pull", "registry:other:*", "foo:a/b:pull", "repository:a/b:*"} {
		if got := access.ReviewAttributes(mustScope(t, text), integrated); len(got) != 0 {
			t.Errorf("%s: got %#v, want nothing", text, got)
		}
	}
}

func TestDecideAccessGrantsOnlyAllowedActions(t *testing.T) {
	sar := fakes.NewReviewer([3]string{"get", "imagestreams", "myproject"})
	got, refused, err := access.DecideAccess(mustScopes(t, "repository:myproject/app:pull,push", "repository:other/app:pull"), integrated, sar.Authorize())
	want := []access.Access{{"repository", "myproject/app", []string{"pull"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v; want %#v", got, err, want)
	}
	layers := access.ResourceAttributes{Group: "image.openshift.io", Resource: "imagestreams", Subresource: "layers"}
	at := func(namespace, name, verb string) access.ResourceAttributes {
		attrs := layers
		attrs.Namespace, attrs.Name, attrs.Verb = namespace, name, verb
		return attrs
	}
	wantRefused := []access.Refusal{
		{scope.Scope{Type: "repository", Name: "myproject/app", Actions: []string{"push"}}, at("myproject", "app", "update")},
		{scope.Scope{Type: "repository", Name: "other/app", Actions: []string{"pull"}}, at("other", "app", "get")},
	}
	if !reflect.DeepEqual(refused, wantRefused) {
		t.Errorf("refused %#v\nwant %#v", refused, wantRefused)
	}
}

func TestDecideAccessPushDeleteAndCatalog(t *testing.T) {
	sar := fakes.NewReviewer([3]string{"get", "imagestreams", "p"}, [3]string{"update", "imagestreams", "p"},
		[3]string{"delete", "images", ""}, [3]string{"list", "imagestreams", ""})
	got, refused, err := access.DecideAccess(mustScopes(t, "repository:p/app:pull,push,delete", "registry:catalog:*", "foo:p/app:pull"), integrated, sar.Authorize())
	want := []access.Access{
		{"repository", "p/app", []string{"pull", "push", "delete"}},
		{"registry", "catalog", []string{"*"}},
	}
	if err != nil || !reflect.DeepEqual(got, want) || len(refused) != 0 {
		t.Errorf("got %#v, %v, %v; want %#v", got, refused, err, want)
	}
}

// OpenShift's defaults grant imagestreams/layers and images in a namespace (admin, edit,
// system:image-builder, system:image-pusher): none of it opens an environment registry.
func TestDecideAccessEnvironmentIgnoresOpenShiftImageGrants(t *testing.T) {
	openshift := fakes.NewReviewer([3]string{"get", "imagestreams", "test"}, [3]string{"update", "imagestreams", "test"},
		[3]string{"delete", "images", ""}, [3]string{"list", "imagestreams", ""}, [3]string{"delete", "images", "test"})
	scopes := mustScopes(t, "repository:a/one:pull,push,delete", "registry:catalog:*")
	got, refused, err := access.DecideAccess(scopes, envTest, openshift.Authorize())
	if err != nil || len(got) != 0 || len(refused) != 4 {
		t.Errorf("OpenShift's image grants opened an environment registry: %#v, refused %#v, %v", got, refused, err)
	}
	promoter := fakes.NewReviewer([3]string{"pull", "environmentregistries", "test"}, [3]string{"push", "environmentregistries", "test"},
		[3]string{"delete", "environmentregistries", "test"}, [3]string{"catalog", "environmentregistries", "test"})
	got, _, err = access.DecideAccess(scopes, envTest, promoter.Authorize())
	want := []access.Access{{"repository", "a/one", []string{"pull", "push", "delete"}}, {"registry", "catalog", []string{"*"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("the environment grants: got %#v, %v", got, err)
	}
	for _, call := range promoter.Calls {
		if call.Group != "segmented.registry" || call.Namespace != "test" || call.Name != "" {
			t.Errorf("review %#v", call)
		}
	}
}

func TestDecideAccessFixedNamespaceAndMemoizedReviews(t *testing.T) {
	sar := fakes.NewReviewer([3]string{"pull", "environmentregistries", "test"})
	got, _, err := access.DecideAccess(mustScopes(t, "repository:a/one:pull,push", "repository:b/two:pull"), envTest, sar.Authorize())
	want := []access.Access{{"repository", "a/one", []string{"pull"}}, {"repository", "b/two", []string{"pull"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v; want %#v", got, err, want)
	}
	// same attributes (namespace test, no name) are reviewed once: pull once, push once
	var verbs []string
	for _, call := range sar.Calls {
		verbs = append(verbs, call.Verb)
	}
	sort.Strings(verbs)
	if !reflect.DeepEqual(verbs, []string{"pull", "push"}) {
		t.Errorf("reviews: %v", verbs)
	}
}

func TestDecideAccessNothingRequestedOrNothingAllowed(t *testing.T) {
	for _, scopes := range [][]scope.Scope{nil, mustScopes(t, "repository:p/a:pull,push")} {
		got, _, err := access.DecideAccess(scopes, integrated, fakes.NewReviewer().Authorize())
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("got %#v, %v; want an empty, non-nil list (the claim is \"access\": [])", got, err)
		}
	}
}

func TestDecideAccessStopsAtAReviewError(t *testing.T) {
	calls := 0
	failing := func(access.ResourceAttributes) (bool, error) {
		calls++
		return false, review.ErrSubjectAccessReview
	}
	_, _, err := access.DecideAccess(mustScopes(t, "repository:p/a:pull,push"), integrated, failing)
	if !errors.Is(err, review.ErrSubjectAccessReview) || calls != 1 {
		t.Errorf("got %v after %d calls", err, calls)
	}
}
