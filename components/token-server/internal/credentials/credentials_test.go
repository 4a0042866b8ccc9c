package credentials

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/segmented-registry/token-server/internal/testkit"
)

func TestFromHeader(t *testing.T) {
	for header, want := range map[string]*Credentials{
		"":                              nil,
		"  ":                            nil,
		testkit.Basic("bob", "s3:cr3t"): {Account: "bob", Secret: "s3:cr3t"},
		"Bearer abc.def":                {Secret: "abc.def"},
		"bearer  abc.def ":              {Secret: "abc.def"},
	} {
		got, err := FromHeader(header)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("FromHeader(%q) = %#v, %v; want %#v", header, got, err, want)
		}
	}
	for header, want := range map[string]error{
		"Basic !!!": ErrMalformedBasic,
		"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")):                            ErrMalformedBasic,
		"Basic " + base64.StdEncoding.EncodeToString([]byte("bob:s3\xff")):                         ErrMalformedBasic,
		"Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("bob:s3cr3t")), "="): ErrMalformedBasic,
		testkit.Basic("bob", ""): ErrEmptyPassword,
		"Digest x":               ErrScheme,
		"Bearer ":                ErrScheme,
	} {
		_, err := FromHeader(header)
		if !errors.Is(err, want) {
			t.Errorf("FromHeader(%q) = %v; want %v", header, err, want)
		} else if strings.Contains(err.Error(), "s3") {
			t.Errorf("the error %q shows the secret", err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	if Fingerprint("t") != Fingerprint("t") || Fingerprint("t") == Fingerprint("u") || len(Fingerprint("t")) != 64 {
		t.Error("Fingerprint must be the hex sha256")
	}
	if Fingerprint("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Error("Fingerprint(abc) is not sha256(abc)")
	}
}
