package raft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	hraft "github.com/hashicorp/raft"

	"github.com/tallyhq/tally/core"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, reqs := range [][][]byte{
		{[]byte("a")},
		{[]byte(""), []byte("bb"), bytes.Repeat([]byte("x"), 300)},
	} {
		var entry []byte
		for _, r := range reqs {
			entry = appendRequest(entry, r)
		}
		got, err := splitEntry(entry, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", reqs) {
			t.Fatalf("split %q, want %q", got, reqs)
		}
	}
}

func FuzzSplitEntry(f *testing.F) {
	f.Add([]byte{entryFormat, 1, 'a'})
	f.Add(appendRequest(appendRequest(nil, []byte("abc")), []byte("{}")))
	f.Add([]byte{entryFormat, 0x80})
	f.Fuzz(func(t *testing.T, entry []byte) {
		parts, err := splitEntry(entry, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformedEntry) {
				t.Fatalf("error %v does not wrap ErrMalformedEntry", err)
			}
			return
		}
		var again []byte
		for _, p := range parts {
			again = appendRequest(again, p)
		}
		if !bytes.Equal(again, entry) {
			t.Fatalf("%x splits and joins to %x", entry, again)
		}
	})
}

// TestFSMLargeEntry applies an entry large enough to be decoded on several
// cores and checks each result against core applying the same requests.
func TestFSMLargeEntry(t *testing.T) {
	var reqs []core.Request
	add := func(c core.Command) {
		reqs = append(reqs, core.Request{ID: core.RequestID{Session: 7, Seq: uint64(len(reqs) + 1)}, At: t0, Command: c})
	}
	add(rights(150))
	for i := range 120 {
		dev := device(t, devName(i))
		add(hello(dev))
		add(checkout(dev, "cad", int64(i%3+1)))
	}
	var entry []byte
	for i, r := range reqs {
		data, err := core.EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		if i == 50 {
			entry = appendRequest(entry, []byte("not json"))
		}
		entry = appendRequest(entry, data)
	}
	f := newFSM(core.Config{}, nil)
	resp, ok := f.Apply(&hraft.Log{Index: 3, Data: entry}).(*entryResponse)
	if !ok || resp.err != nil || len(resp.results) != len(reqs)+1 {
		t.Fatalf("response %+v", resp)
	}
	if !errors.Is(resp.results[50].err, core.ErrInvalidCommand) {
		t.Fatalf("request 50: %v", resp.results[50].err)
	}
	results := append(resp.results[:50:50], resp.results[51:]...)
	alone := core.New(core.Config{})
	for i, r := range reqs {
		want, wantErr := alone.Apply(r)
		if fmt.Sprint(results[i].err) != fmt.Sprint(wantErr) {
			t.Fatalf("request %d: error %v, core alone %v", i, results[i].err, wantErr)
		}
		gj, _ := json.Marshal(results[i].res)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Fatalf("request %d: %s, core alone %s", i, gj, wj)
		}
	}
	if f.applied.Load() != 3 {
		t.Fatalf("applied index %d", f.applied.Load())
	}
	// The same entry again, as after a restore that already holds it.
	if resp := f.Apply(&hraft.Log{Index: 3, Data: entry}).(*entryResponse); !errors.Is(resp.err, core.ErrNotApplied) {
		t.Fatalf("entry applied twice: %+v", resp)
	}
}

func TestSnapshotHeader(t *testing.T) {
	f := newFSM(core.Config{}, nil)
	for _, data := range [][]byte{nil, []byte("TALLYSNP"), []byte("NOTTALLY0000000000{}"), append([]byte("TALLYSNP\x00\x09"), make([]byte, 8)...)} {
		if err := f.Restore(nopCloser{bytes.NewReader(data)}); !errors.Is(err, ErrSnapshotFormat) {
			t.Fatalf("restore of %q: %v", data, err)
		}
	}
	good := append([]byte("TALLYSNP\x00\x01"), make([]byte, 8)...)
	if err := f.Restore(nopCloser{bytes.NewReader(append(good, "{}"...))}); !errors.Is(err, core.ErrInvalidSnapshot) {
		t.Fatalf("restore of a damaged state: %v", err)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
