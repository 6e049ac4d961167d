package core

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// readSeed returns the bytes of a seed corpus file in testdata.
func readSeed(t *testing.T, target, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(raw), "\n", 3)
	quoted := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
	s, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatalf("%s/%s: %v", target, name, err)
	}
	return []byte(s)
}

func TestDecodeRequestSeeds(t *testing.T) {
	good := map[string]string{
		"tick": "tick", "checkout": "checkout", "return": "checkout", "hello": "hello", "rights": "loadRights",
		"model": "setModel", "reservations": "setReservations", "property": "setProperty",
		"create-user": "createUser", "set-user-roles": "setUserRoles", "set-password": "setPassword",
		"delete-user": "deleteUser", "logout": "logout", "set-token-key": "setTokenKey",
		"audited-property": "audited", "audited-user": "audited", "audited-drop": "audited",
		"create-keys-one-time": "createKeys", "create-keys-mass": "createKeys", "set-key-active": "setKeyActive",
		"set-key-description": "setKeyDescription", "delete-key": "deleteKey", "onboard": "onboard",
		"onboard-one-time": "onboard", "set-client-key": "setClientKey", "audited-keys": "audited",
	}
	for name, typ := range good {
		r, err := DecodeRequest(readSeed(t, "FuzzDecodeRequest", name))
		if err != nil || r.Command.Type() != typ {
			t.Errorf("%s: %v, %v", name, r.Command, err)
		}
	}
	bad := map[string]error{
		"unknown-type":              ErrUnknownCommand,
		"bad-version":               version.ErrInvalid,
		"negative-count":            ErrInvalidCount,
		"unknown-hostid":            hostid.ErrUnknownType,
		"trailing":                  ErrInvalidCommand,
		"audited-nested":            ErrInvalidCommand,
		"audited-checkout":          ErrInvalidCommand,
		"onboard-short-secret":      ErrUnknownKey,
		"create-keys-shared-secret": ErrDuplicateKeySecret,
	}
	for name, want := range bad {
		if _, err := DecodeRequest(readSeed(t, "FuzzDecodeRequest", name)); !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", name, err, want)
		}
	}
}

func TestDecodeCanonicalises(t *testing.T) {
	r, err := DecodeRequest(readSeed(t, "FuzzDecodeRequest", "return"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Command.(*Checkout).Device; got != mac(1) {
		t.Fatalf("device %v, want the canonical %v", got, mac(1))
	}
	r, err = DecodeRequest(readSeed(t, "FuzzDecodeRequest", "property"))
	if err != nil || r.Command.(*SetProperty).Value != "true" {
		t.Fatalf("property value not canonical: %+v %v", r.Command, err)
	}
	if !r.At.Equal(t0) {
		t.Fatalf("at %s, want %s", r.At, t0)
	}
}

func TestReservationsImportExport(t *testing.T) {
	groups, err := ParseReservations(readSeed(t, "FuzzParseReservations", "design-example"))
	if err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "name": "g",
    "reservations": [
      {
        "hostId": {
          "value": "00:11:22:33:44:55",
          "type": "ETHERNET"
        },
        "reservationEntries": [
          {
            "featureName": "f",
            "featureVersion": "1.0",
            "featureCount": 3
          }
        ]
      }
    ]
  }
]`
	out, _ := FormatReservations(groups)
	if string(out) != want {
		t.Fatalf("export:\n%s\nwant\n%s", out, want)
	}
	if g, err := ParseReservations(readSeed(t, "FuzzParseReservations", "single-object")); err != nil || len(g) != 1 || len(g[0].Reservations[0].Entries) != 2 {
		t.Fatalf("single object: %+v %v", g, err)
	}
	for _, name := range []string{"duplicate-host", "unknown-field", "zero-count", "null"} {
		if _, err := ParseReservations(readSeed(t, "FuzzParseReservations", name)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseReservations(readSeed(t, "FuzzParseReservations", "duplicate-host")); err == nil || !strings.Contains(err.Error(), "SN (SERIAL) is reserved twice") {
		t.Errorf("duplicate hostid error does not name it: %v", err)
	}
}
