package core

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// FuzzResultCodec: the fast encoding of a result is the bytes
// encoding/json writes, and reads back as encoding/json reads it.
func FuzzResultCodec(f *testing.F) {
	f.Add("02:00:00:00:00:01", uint8(hostid.Ethernet), "cad", "1.0", int64(2), int64(0), t0.UnixNano(), t0.Add(time.Hour).UnixNano(), uint8(0), uint64(3), false)
	f.Add("x<y", uint8(hostid.String), "f", "2", int64(-1), int64(1), int64(0), int64(0), uint8(DenyInsufficient), uint64(0), false)
	f.Add("", uint8(0), "", "", int64(0), int64(0), int64(0), int64(0), uint8(DenyNotOnboarded), uint64(1<<64-1), true)
	f.Fuzz(func(t *testing.T, value string, typ uint8, feature, ver string, count, overdraft, expiry, renew int64, denied uint8, conn uint64, dup bool) {
		at := func(ns int64) time.Time {
			if ns == 0 {
				return time.Time{}
			}
			return time.Unix(0, ns).UTC()
		}
		r := Result{Duplicate: dup, Denied: DenialReason(denied), Conn: conn, Grant: Grant{
			Device: hostid.HostID{Value: value, Type: hostid.Type(typ)}, Feature: feature, Version: ver,
			Count: count, Overdraft: overdraft, Expiry: at(expiry), RenewAt: at(renew),
		}}
		slow, slowErr := json.Marshal(r)
		fast, ok := appendResult(nil, r)
		if !ok {
			return
		}
		if slowErr != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("encodings differ (%v):\nfast %s\nslow %s", slowErr, fast, slow)
		}
		if _, ok := readResult(fast); !ok {
			t.Fatalf("the fast reader does not read the fast encoding: %s", fast)
		}
		sameResult(t, fast)
	})
}

// sameResult checks that the fast reader, where it reads data at all,
// reads what encoding/json reads.
func sameResult(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := readResult(data)
	if !ok {
		return
	}
	var slow Result
	if err := json.Unmarshal(data, &slow); err != nil {
		t.Fatalf("%s: the fast reader read what encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s:\nfast %#v\nslow %#v", data, fast, slow)
	}
}

// FuzzResultDecode: for arbitrary bytes, the fast reader either leaves
// them to encoding/json or reads what it reads.
func FuzzResultDecode(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"grant":{"device":{"value":"02:00:00:00:00:01","type":"ETHERNET"},"feature":"cad","version":"1.0","count":2,"expiry":"2026-01-05T10:00:00Z","renewAt":"2026-01-05T09:30:00.5Z"},"conn":4}`,
		`{"grant":{"device":{"value":"x","type":"string"},"feature":"cad","version":"1.0","count":0,"overdraft":1},"denied":"insufficient counts"}`,
		`{"denied":"no such feature"}`,
		`{"grant":{"device":{"value":"x","type":"STRING"},"feature":"cad","version":"1.0","count":1,"expiry":"2026-13-05T10:00:00Z"}}`,
		`{"conn":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameResult(t, data)
	})
}

func TestResultCodecPaths(t *testing.T) {
	r := Result{Grant: Grant{Device: mac(1), Feature: "cad", Version: "1.0", Count: 2, Expiry: t0.Add(time.Hour), RenewAt: t0}, Conn: 3}
	b, err := EncodeResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := readResult(b); !ok {
		t.Fatalf("a grant missed the fast path: %s", b)
	}
	back, err := DecodeResult(b)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("%+v %v", back, err)
	}
	// A result with freed leases goes through encoding/json both ways.
	r.Changed = []Lease{{Device: mac(2), Feature: "cad", Version: version.MustParse("1.0")}}
	b, err = EncodeResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := readResult(b); ok {
		t.Fatalf("the fast reader took a result with changed leases: %s", b)
	}
	back, err = DecodeResult(b)
	if err != nil || len(back.Changed) != 1 || back.Changed[0].Device != mac(2) {
		t.Fatalf("%+v %v", back, err)
	}
}
