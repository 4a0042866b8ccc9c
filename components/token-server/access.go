package main

import "strings"

// The access decision: which SubjectAccessReview grants which action of a scope, the way
// OpenShift's integrated registry decides it.

const imageGroup = "image.openshift.io"

// Service is how one registry (one "service" value of a token request) maps repositories to the
// namespaces whose RBAC decides access: the repository's first path segment
// (NamespaceFromRepository, the integrated registry) or one fixed Namespace (an environment
// registry).
type Service struct {
	Name                    string
	Issuer                  string
	NamespaceFromRepository bool
	Namespace               string
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

// ReviewAttributes returns, for each action of scope that can be granted, the SubjectAccessReview
// that grants it:
//
//   - repository pull: get imagestreams/layers, push: update imagestreams/layers, in the
//     repository's namespace (NamespaceFromRepository: the first path segment, the rest of the
//     path is the ImageStream name; a repository without a "/" gets nothing) or in the service's
//     fixed namespace (no name: the repository is not an ImageStream of that namespace);
//   - repository delete: cluster-wide delete on images;
//   - registry:catalog:*: cluster-wide list on imagestreams.
//
// Actions absent from the result are never granted.
func ReviewAttributes(scope Scope, service Service) map[string]ResourceAttributes {
	out := map[string]ResourceAttributes{}
	switch {
	case scope.Type == "repository":
		layers := ResourceAttributes{Group: imageGroup, Resource: "imagestreams", Subresource: "layers",
			Namespace: service.Namespace}
		if service.NamespaceFromRepository {
			namespace, stream, found := strings.Cut(scope.Name, "/")
			if !found {
				return out // OpenShift needs <namespace>/<name>
			}
			layers.Namespace, layers.Name = namespace, stream
		}
		for _, action := range scope.Actions {
			switch action {
			case "pull":
				out[action] = withVerb(layers, "get")
			case "push":
				out[action] = withVerb(layers, "update")
			case "delete":
				out[action] = ResourceAttributes{Group: imageGroup, Resource: "images", Verb: "delete"}
			}
		}
	case scope.Type == "registry" && scope.Name == "catalog":
		for _, action := range scope.Actions {
			if action == "*" {
				out[action] = ResourceAttributes{Group: imageGroup, Resource: "imagestreams", Verb: "list"}
			}
		}
	}
	return out
}

// DecideAccess returns the access claim for scopes: per merged resource, the actions whose
// review authorize allows; resources without a granted action are left out. authorize is called
// at most once per distinct attribute set; its first error ends the decision.
func DecideAccess(scopes []Scope, service Service, authorize func(ResourceAttributes) (bool, error)) ([]Access, error) {
	answers := map[ResourceAttributes]bool{}
	granted := []Access{}
	for _, scope := range MergeScopes(scopes) {
		needed := ReviewAttributes(scope, service)
		var actions []string
		for _, action := range scope.Actions {
			attrs, ok := needed[action]
			if !ok {
				continue
			}
			allowed, known := answers[attrs]
			if !known {
				var err error
				if allowed, err = authorize(attrs); err != nil {
					return nil, err
				}
				answers[attrs] = allowed
			}
			if allowed {
				actions = append(actions, action)
			}
		}
		if len(actions) > 0 {
			granted = append(granted, Access{Type: scope.Type, Name: scope.Name, Actions: actions})
		}
	}
	return granted, nil
}

func withVerb(attrs ResourceAttributes, verb string) ResourceAttributes {
	attrs.Verb = verb
	return attrs
}
