package plan

import (
	"errors"
	"strings"
	"testing"
)

const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

func TestDefaults(t *testing.T) {
	p, err := Parse(strings.NewReader(`{"source": {"registry": "src:5000"}, "destinations": {"test": {"registry": "dst:5000", "insecure": true}},
		"token_file": "/t", "items": [{"id": 3, "environment": "test", "repository": "ns/app", "tag": "v1", "digest": "` + digest + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.ParallelImages != 4 || p.ParallelBlobs != 6 || *p.Retries != 3 || p.TimeoutSeconds != 60 {
		t.Fatalf("defaults %+v", p)
	}
	if p.Items[0].SourceRepository != "ns/app" || p.Items[0].ByDigest || p.Items[0].Requires != nil {
		t.Fatalf("item %+v", p.Items[0])
	}
	p, err = Parse(strings.NewReader(`{"source": {"registry": "src:5000"}, "destinations": {}, "token_file": "/t", "retries": 0, "items": []}`))
	if err != nil || *p.Retries != 0 {
		t.Fatalf("retries 0 given: %v %v", err, p)
	}
}

func TestProblemsNameTheirFields(t *testing.T) {
	_, err := Parse(strings.NewReader(`{"source": {"registry": "https://src"}, "destinations": {"test": {"registry": "dst", "insecure": true, "ca_file": "/ca"}},
		"parallel_blobs": 100, "present": {"test": {"ns/app": ["sha256:x"]}},
		"items": [{"id": 1, "environment": "test", "repository": "NS/App", "tag": "v 1", "digest": "` + digest + `", "requires": {"environment": "uat"}},
		          {"id": 1, "environment": "test", "repository": "ns/app", "tag": "v1", "digest": "` + digest + `"}]}`))
	if !errors.Is(err, ErrPlan) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{
		`source.registry "https://src": give host[:port]`, "destinations.test: insecure (plain HTTP) and ca_file exclude each other",
		"token_file: required", "parallel_blobs 100", `present.test["ns/app"][0] "sha256:x"`, `items[0].repository "NS/App"`,
		`items[0].tag "v 1"`, "items[0].requires: give environment, repository and digest", "items[1].id 1: used twice",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestUnknownFieldsAreRefused(t *testing.T) {
	_, err := Parse(strings.NewReader(`{"source": {"registry": "src", "insecure": false, "verify": false}}`))
	if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), `unknown field "verify"`) {
		t.Fatalf("error %v", err)
	}
}
