package core

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// sameDecode checks that the fast path, where it reads data at all, reads
// exactly what encoding/json reads, error included.
func sameDecode(t *testing.T, data []byte) {
	t.Helper()
	fast, fastErr, ok := decodeCheckoutRequest(data)
	if !ok {
		return
	}
	slow, slowErr := decodeRequestJSON(data)
	if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
		t.Fatalf("%s:\nfast error %v\nslow error %v", data, fastErr, slowErr)
	}
	if fastErr == nil && (fast.ID != slow.ID || !fast.At.Equal(slow.At) || !reflect.DeepEqual(fast.Command, slow.Command)) {
		t.Fatalf("%s:\nfast %#v %#v\nslow %#v %#v", data, fast, fast.Command, slow, slow.Command)
	}
}

// FuzzCheckoutCodec: the fast encoding of a checkout request is the bytes
// encoding/json writes, and both decoders read it alike.
func FuzzCheckoutCodec(f *testing.F) {
	f.Add(uint64(1), uint64(2), t0.UnixNano(), "02:00:00:00:00:01", uint8(hostid.Ethernet), "cad", "1.0", int64(2), int64(time.Hour), uint64(3))
	f.Add(uint64(1<<63), uint64(1<<64-1), int64(-1), "dev<1>&\"x\"", uint8(hostid.String), "fé", "2.0.1", int64(-5), int64(0), uint64(0))
	f.Add(uint64(7), uint64(9), int64(0), "serial-9", uint8(hostid.Serial), "a\\b", "1", int64(0), int64(-3), uint64(1<<64-1))
	f.Fuzz(func(t *testing.T, session, seq uint64, at int64, value string, typ uint8, feature, ver string, count, borrow int64, conn uint64) {
		v, err := version.Parse(ver)
		if err != nil {
			return
		}
		c := &Checkout{Device: hostid.HostID{Value: value, Type: hostid.Type(typ)}, Feature: feature, Version: v,
			Count: count, Borrow: time.Duration(borrow), Conn: conn}
		r := Request{ID: RequestID{Session: SessionID(session), Seq: seq}, At: time.Unix(0, at), Command: c}
		fast, ok := appendCheckoutRequest(nil, r, c)
		slow, slowErr := encodeRequestJSON(r)
		if !ok {
			return
		}
		if slowErr != nil {
			t.Fatalf("fast path encoded what encoding/json refuses (%v): %s", slowErr, fast)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("encodings differ:\nfast %s\nslow %s", fast, slow)
		}
		if _, _, ok := decodeCheckoutRequest(fast); !ok {
			t.Fatalf("the fast decoder does not read the fast encoding: %s", fast)
		}
		sameDecode(t, fast)
	})
}

// FuzzCheckoutDecode: for arbitrary bytes, the fast decoder either leaves
// them to encoding/json or reads what it reads.
func FuzzCheckoutDecode(f *testing.F) {
	for _, s := range []string{
		`{"session":1,"seq":2,"at":3,"type":"checkout","command":{"device":{"value":"02:00:00:00:00:01","type":"ETHERNET"},"feature":"cad","version":"1.0","count":2}}`,
		`{"session":1,"seq":2,"at":-3,"type":"checkout","command":{"device":{"value":"x","type":"string"},"feature":"cad","version":"1.0","count":2,"borrow":5,"conn":9}}`,
		`{"session":0,"seq":2,"at":3,"type":"checkout","command":{"device":{"value":"x","type":"STRING"},"feature":"cad","version":"1.0","count":-1}}`,
		`{"session":01,"seq":2,"at":3,"type":"checkout","command":{"device":{"value":"x","type":"STRING"},"feature":"cad","version":"1.0","count":1}}`,
		`{"session":1,"seq":2,"at":-0,"type":"checkout","command":{"device":{"value":"x","type":"STRING"},"feature":"","version":"1.0","count":1}}`,
		`{"session":1,"seq":2,"at":3,"type":"checkout","command":{"device":{"value":"x","type":"STRING"},"feature":"cad","version":"1.0","count":1,"conn":0}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameDecode(t, data)
	})
}

func TestCheckoutFastPathTaken(t *testing.T) {
	r := Request{ID: RequestID{1, 2}, At: t0, Command: &Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 2, Conn: 4}}
	b, err := EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := decodeCheckoutRequest(b); !ok {
		t.Fatalf("a plain checkout missed the fast path: %s", b)
	}
	slow, _ := encodeRequestJSON(r)
	if !bytes.Equal(b, slow) {
		t.Fatalf("fast %s\nslow %s", b, slow)
	}
	// A value that needs escaping goes through encoding/json, and reads
	// back the same.
	r.Command = &Checkout{Device: hostid.HostID{Value: "a<b", Type: hostid.String}, Feature: "cad", Version: version.MustParse("1.0"), Count: 2}
	b, err = EncodeRequest(r)
	if err != nil || !bytes.Contains(b, []byte(`\u003c`)) {
		t.Fatalf("%s %v", b, err)
	}
	back, err := DecodeRequest(b)
	if err != nil || back.Command.(*Checkout).Device.Value != "a<b" {
		t.Fatalf("%+v %v", back, err)
	}
}

func BenchmarkCheckoutCodec(b *testing.B) {
	r := Request{ID: RequestID{1, 2}, At: t0, Command: &Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 2, Conn: 4}}
	data, _ := EncodeRequest(r)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			EncodeRequest(r)
			DecodeRequest(data)
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			encodeRequestJSON(r)
			decodeRequestJSON(data)
		}
	})
}
