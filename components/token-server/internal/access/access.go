// Package access decides which SubjectAccessReview grants which action of a scope.
package access

import (
	"strings"

	"github.com/segmented-registry/token-server/internal/scope"
)

// The access decision: which SubjectAccessReview grants which action of a scope. The integrated
// registry decides the way OpenShift's does; an environment registry by a resource of this
// collection's own, which no OpenShift default role grants.

const (
	imageGroup = "image.openshift.io"
	// EnvironmentGroup and EnvironmentResource authorize the environment registries: verbs pull,
	// push, delete and catalog in the environment's namespace. No built-in role (admin, edit,
	// view, system:image-builder, ...) carries them; cluster-admin's wildcard does.
	EnvironmentGroup    = "segmented.registry"
	EnvironmentResource = "environmentregistries"
)

// Service is how one registry (one "service" value of a token request) maps repositories to the
// namespaces whose RBAC decides access: the repository's first path segment
// (NamespaceFromRepository, the integrated registry) or one fixed Namespace (an environment
// registry). Audiences, when set, are the audiences a presented token must be bound to.
type Service struct {
	Name                    string
	Issuer                  string
	NamespaceFromRepository bool
	Namespace               string
	Audiences               []string
}

// ResourceAttributes are the resourceAttributes of a SubjectAccessReview
// (authorization.k8s.io/v1). The type is comparable: equal attributes are reviewed once.
type ResourceAttributes struct {
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	Verb        string `json:"verb,omitempty"`
}

// Access is one entry of a token's access claim: the granted actions on one resource.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Refusal is one requested action that was not granted, and the grant it lacks.
type Refusal struct {
	Scope  scope.Scope // the resource and the one refused action
	Lacked ResourceAttributes
}

// ReviewAttributes returns, for each action of scope that can be granted, the SubjectAccessReview
// that grants it.
//
// The integrated registry (NamespaceFromRepository), OpenShift's model:
//   - repository pull: get imagestreams/layers, push: update imagestreams/layers, in the
//     repository's namespace (the first path segment, the rest of the path is the ImageStream
//     name; a repository without a "/" gets nothing);
//   - repository delete: cluster-wide delete on images;
//   - registry:catalog:*: cluster-wide list on imagestreams.
//
// An environment registry (a fixed Namespace): group segmented.registry, resource
// environmentregistries in that namespace (no name: repositories are not API objects), verb
// pull, push or delete for the repository action of that name, catalog for registry:catalog:*.
//
// Actions absent from the result are never granted.
func ReviewAttributes(s scope.Scope, service Service) map[string]ResourceAttributes {
	if !service.NamespaceFromRepository {
		return environmentAttributes(s, service.Namespace)
	}
	out := map[string]ResourceAttributes{}
	switch {
	case s.Type == "repository":
		namespace, stream, found := strings.Cut(s.Name, "/")
		if !found {
			return out // OpenShift needs <namespace>/<name>
		}
		layers := ResourceAttributes{Group: imageGroup, Resource: "imagestreams", Subresource: "layers",
			Namespace: namespace, Name: stream}
		for _, action := range s.Actions {
			switch action {
			case "pull":
				out[action] = withVerb(layers, "get")
			case "push":
				out[action] = withVerb(layers, "update")
			case "delete":
				out[action] = ResourceAttributes{Group: imageGroup, Resource: "images", Verb: "delete"}
			}
		}
	case s.Type == "registry" && s.Name == "catalog":
		for _, action := range s.Actions {
			if action == "*" {
				out[action] = ResourceAttributes{Group: imageGroup, Resource: "imagestreams", Verb: "list"}
			}
		}
	}
	return out
}

func environmentAttributes(s scope.Scope, namespace string) map[string]ResourceAttributes {
	registry := ResourceAttributes{Group: EnvironmentGroup, Resource: EnvironmentResource, Namespace: namespace}
	out := map[string]ResourceAttributes{}
	for _, action := range s.Actions {
		switch {
		case s.Type == "repository" && (action == "pull" || action == "push" || action == "delete"):
			out[action] = withVerb(registry, action)
		case s.Type == "registry" && s.Name == "catalog" && action == "*":
			out[action] = withVerb(registry, "catalog")
		}
	}
	return out
}

// ReviewCount is how many SubjectAccessReviews DecideAccess sends for scopes: one per distinct
// attribute set.
func ReviewCount(scopes []scope.Scope, service Service) int {
	distinct := map[ResourceAttributes]bool{}
	for _, s := range scope.Merge(scopes) {
		for _, attrs := range ReviewAttributes(s, service) {
			distinct[attrs] = true
		}
	}
	return len(distinct)
}

// DecideAccess returns the access claim for scopes: per merged resource, the actions whose
// review authorize allows (resources without a granted action are left out), and each action
// that was refused with the grant it lacks. authorize is called at most once per distinct
// attribute set; its first error ends the decision.
func DecideAccess(scopes []scope.Scope, service Service, authorize func(ResourceAttributes) (bool, error)) ([]Access, []Refusal, error) {
	answers := map[ResourceAttributes]bool{}
	granted := []Access{}
	var refused []Refusal
	for _, s := range scope.Merge(scopes) {
		needed := ReviewAttributes(s, service)
		var actions []string
		for _, action := range s.Actions {
			attrs, ok := needed[action]
			if !ok {
				continue
			}
			allowed, known := answers[attrs]
			if !known {
				var err error
				if allowed, err = authorize(attrs); err != nil {
					return nil, nil, err
				}
				answers[attrs] = allowed
			}
			if allowed {
				actions = append(actions, action)
			} else {
				refused = append(refused, Refusal{scope.Scope{Type: s.Type, Name: s.Name, Actions: []string{action}}, attrs})
			}
		}
		if len(actions) > 0 {
			granted = append(granted, Access{Type: s.Type, Name: s.Name, Actions: actions})
		}
	}
	return granted, refused, nil
}

func withVerb(attrs ResourceAttributes, verb string) ResourceAttributes {
	attrs.Verb = verb
	return attrs
}
