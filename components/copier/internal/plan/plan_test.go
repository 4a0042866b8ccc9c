package plan

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
		`source.registry "https://src": give host[:port]`, "token_file: required", "parallel_blobs 100", `present.test["ns/app"][0] "sha256:x"`, `items[0].repository "NS/App"`,
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

// A plan in parts, as the copy Jobs mount it (a projected volume of ConfigMaps, gzip): one plan,
// its items in order; a part with other settings, a repeated id, or a folder with no part is refused.
func TestAFolderOfPartsIsOnePlan(t *testing.T) {
	part := func(items, retries string) string {
		return `{"source": {"registry": "src:5000"}, "destinations": {"test": {"registry": "dst:5000", "insecure": true}},
			"token_file": "/t", "retries": ` + retries + `, "present": {"test": {"ns/app": ["` + digest + `"]}}, "items": [` + items + `]}`
	}
	item := func(id string) string {
		return `{"id": ` + id + `, "environment": "test", "repository": "ns/app", "tag": "v` + id + `", "digest": "` + digest + `"}`
	}
	write := func(dir, name, text string, zipped bool) {
		t.Helper()
		var data bytes.Buffer
		if zipped {
			w := gzip.NewWriter(&data)
			w.Write([]byte(text))
			w.Close()
		} else {
			data.WriteString(text)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write(dir, "plan-0.json.gz", part(item("1")+","+item("2"), "3"), true)
	write(dir, "plan-1.json.gz", part(item("3"), "3"), true)
	write(dir, ".hidden.json", "not json", false)
	if err := os.Mkdir(filepath.Join(dir, "..2026_12_06"), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, it := range p.Items {
		ids = append(ids, it.ID)
	}
	if fmt.Sprint(ids) != "[1 2 3]" || len(p.Present["test"]["ns/app"]) != 2 {
		t.Fatalf("items %v present %v", ids, p.Present)
	}

	write(dir, "plan-2.json", part(item("4"), "5"), false)
	if _, err := Load(dir); !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "plan-2.json holds other settings") {
		t.Fatalf("other settings: %v", err)
	}
	write(dir, "plan-2.json", part(item("3"), "3"), false)
	if _, err := Load(dir); !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("an id in two parts: %v", err)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "holds no *.json") {
		t.Fatalf("empty folder: %v", err)
	}
}
