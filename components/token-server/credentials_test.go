package main

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestCredentialsFromHeader(t *testing.T) {
	for header, want := range map[string]*Credentials{
		"":                      nil,
		"  ":                    nil,
		basic("bob", "s3:cr3t"): {Account: "bob", Secret: "s3:cr3t"},
		"Bearer abc.def":        {Secret: "abc.def"},
		"bearer  abc.def ":      {Secret: "abc.def"},
	} {
		got, err := CredentialsFromHeader(header)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("CredentialsFromHeader(%q) = %#v, %v; want %#v", header, got, err, want)
		}
	}
	for _, header := range []string{
		"Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), basic("bob", ""),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("bob:s3\xff")), "Digest x", "Bearer ",
		"Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("bob:s3cr3t")), "="),
	} {
		_, err := CredentialsFromHeader(header)
		var credErr *CredentialError
		if !errors.As(err, &credErr) {
			t.Errorf("CredentialsFromHeader(%q) = %v; want a CredentialError", header, err)
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
