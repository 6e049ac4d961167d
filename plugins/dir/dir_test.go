package dir

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tallyhq/tally/plugins"
)

func newConnector(t *testing.T) (*Connector, string) {
	t.Helper()
	d := t.TempDir()
	c, err := New(Config{Dir: d, MaxFileSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestExchangeThroughTheDirectory(t *testing.T) {
	c, d := newConnector(t)
	ctx := context.Background()

	// The request is written; asked again with the same bytes, it keeps its
	// number until the response is there.
	for range 2 {
		if _, err := c.Exchange(ctx, []byte("request one")); !errors.Is(err, plugins.ErrNoResponseYet) {
			t.Fatalf("Exchange before the response: %v, want ErrNoResponseYet", err)
		}
	}
	if got := readFile(t, filepath.Join(d, "out", "request-1.bin")); got != "request one" {
		t.Fatalf("request-1.bin = %q", got)
	}
	if err := os.WriteFile(filepath.Join(d, "in", "response-1.bin"), []byte("response one"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Exchange(ctx, []byte("request one"))
	if err != nil || string(resp) != "response one" {
		t.Fatalf("Exchange = %q, %v", resp, err)
	}

	// A new request takes the next number and does not see the old response.
	if _, err := c.Exchange(ctx, []byte("request two")); !errors.Is(err, plugins.ErrNoResponseYet) {
		t.Fatalf("second request: %v", err)
	}
	if got := readFile(t, filepath.Join(d, "out", "request-2.bin")); got != "request two" {
		t.Fatalf("request-2.bin = %q", got)
	}
	entries, _ := os.ReadDir(filepath.Join(d, "out"))
	if len(entries) != 2 {
		t.Fatalf("out/ holds %d files, want 2 (no temporary files left)", len(entries))
	}

	// Numbering goes on from what is in the directory, as after a restart.
	c2, err := New(Config{Dir: d})
	if err != nil {
		t.Fatal(err)
	}
	c2.Exchange(ctx, []byte("request three"))
	if got := readFile(t, filepath.Join(d, "out", "request-3.bin")); got != "request three" {
		t.Fatalf("request-3.bin = %q", got)
	}
}

func TestLicensingIDAndUsage(t *testing.T) {
	c, d := newConnector(t)
	ctx := context.Background()
	der := []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	if err := c.RegisterLicensingID(ctx, der); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(readFile(t, filepath.Join(d, "out", "licensing-id.cert"))))
	if block == nil || block.Type != "CERTIFICATE" || string(block.Bytes) != string(der) {
		t.Fatalf("licensing-id.cert: %+v", block)
	}
	for _, report := range []string{"usage a", "usage b", "usage a"} {
		if err := c.ReportUsage(ctx, []byte(report)); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"usage a", "usage b"} {
		if got := readFile(t, filepath.Join(d, "out", "usage-"+strconv.Itoa(i+1)+".bin")); got != want {
			t.Errorf("usage-%d.bin = %q, want %q", i+1, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "out", "usage-3.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a repeated report was written again")
	}
}

func TestNothingEscapesTheDirectory(t *testing.T) {
	ctx := context.Background()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("not for the back office"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("response is a symlink out", func(t *testing.T) {
		c, d := newConnector(t)
		if err := os.Symlink(secret, filepath.Join(d, "in", "response-1.bin")); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Exchange(ctx, []byte("request"))
		if !errors.Is(err, plugins.ErrInvalid) || resp != nil {
			t.Fatalf("Exchange = %q, %v; want ErrInvalid", resp, err)
		}
	})
	t.Run("in is a symlink out", func(t *testing.T) {
		c, d := newConnector(t)
		os.Remove(filepath.Join(d, "in"))
		if err := os.Symlink(filepath.Dir(secret), filepath.Join(d, "in")); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(filepath.Dir(secret), "response-1.bin"), []byte("planted"), 0o600)
		if resp, err := c.Exchange(ctx, []byte("request")); !errors.Is(err, plugins.ErrInvalid) {
			t.Fatalf("Exchange = %q, %v; want ErrInvalid", resp, err)
		}
	})
	t.Run("out is a symlink out", func(t *testing.T) {
		c, d := newConnector(t)
		outside := t.TempDir()
		os.Remove(filepath.Join(d, "out"))
		if err := os.Symlink(outside, filepath.Join(d, "out")); err != nil {
			t.Fatal(err)
		}
		if err := c.ReportUsage(ctx, []byte("usage")); !errors.Is(err, plugins.ErrInvalid) {
			t.Fatalf("ReportUsage: %v, want ErrInvalid", err)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("wrote %d files outside the directory", len(entries))
		}
	})
	t.Run("response over the size limit", func(t *testing.T) {
		c, d := newConnector(t)
		os.WriteFile(filepath.Join(d, "in", "response-1.bin"), make([]byte, 1025), 0o644)
		if _, err := c.Exchange(ctx, []byte("request")); !errors.Is(err, plugins.ErrTooLarge) {
			t.Fatalf("Exchange: %v, want ErrTooLarge", err)
		}
	})
	t.Run("request over the size limit", func(t *testing.T) {
		c, _ := newConnector(t)
		if _, err := c.Exchange(ctx, make([]byte, 1025)); !errors.Is(err, plugins.ErrTooLarge) {
			t.Fatalf("Exchange: %v, want ErrTooLarge", err)
		}
	})
	t.Run("directory missing", func(t *testing.T) {
		if _, err := New(Config{Dir: filepath.Join(t.TempDir(), "missing")}); err == nil {
			t.Fatal("New accepted a missing directory")
		}
	})
}

func TestParseSeq(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  uint64
		ok   bool
	}{
		{"request-1.bin", 1, true},
		{"request-42.bin", 42, true},
		{"request-0.bin", 0, false},
		{"request-01.bin", 0, false},
		{"request-.bin", 0, false},
		{"request-1.bin.tmp", 0, false},
		{".request-1.bin.tmp", 0, false},
		{"request--1.bin", 0, false},
		{"request-1x.bin", 0, false},
		{"request-9999999999999.bin", 0, false},
		{"usage-1.bin", 0, false},
	} {
		seq, ok := parseSeq(tc.name, "request-")
		if seq != tc.seq || ok != tc.ok {
			t.Errorf("parseSeq(%q) = %d, %v; want %d, %v", tc.name, seq, ok, tc.seq, tc.ok)
		}
	}
}

// FuzzParseSeq holds that a file name from the stick is either refused or
// is exactly the name the connector writes for its number.
func FuzzParseSeq(f *testing.F) {
	f.Add("response-1.bin")
	f.Fuzz(func(t *testing.T, name string) {
		seq, ok := parseSeq(name, "response-")
		if ok && (seq == 0 || fileName("response-", seq) != name) {
			t.Fatalf("parseSeq(%q) = %d", name, seq)
		}
	})
}
