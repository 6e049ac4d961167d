package device

import (
	"bytes"
	"net"
	"testing"
)

// recordingConn records each write it is given.
type recordingConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func TestCorkedConnHoldsWritesUntilUncorked(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec}
	c.Write([]byte("open "))
	c.cork()
	c.Write([]byte("one "))
	c.Write([]byte("two "))
	if len(rec.writes) != 1 {
		t.Fatalf("corked writes went out: %q", rec.writes)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("after"))
	want := []string{"open ", "one two ", "after"}
	if len(rec.writes) != len(want) {
		t.Fatalf("writes %q, want %q", rec.writes, want)
	}
	for i, w := range want {
		if string(rec.writes[i]) != w {
			t.Fatalf("writes %q, want %q", rec.writes, want)
		}
	}
	if c.held != nil {
		t.Error("an uncorked connection keeps its buffer")
	}
}

func TestCorkedConnWritesWhatExceedsItsLimit(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec}
	c.cork()
	small := bytes.Repeat([]byte("s"), corkedConnLimit/2+1)
	big := bytes.Repeat([]byte("b"), corkedConnLimit+1)
	c.Write(small)
	c.Write(small) // does not fit with the first: the first goes out
	c.Write(big)   // never held
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, w := range rec.writes {
		if len(w) > corkedConnLimit && !bytes.Equal(w, big) {
			t.Errorf("a write of %d bytes, over the limit", len(w))
		}
		got = append(got, w...)
	}
	if want := bytes.Join([][]byte{small, small, big}, nil); !bytes.Equal(got, want) {
		t.Errorf("wrote %d bytes out of order or lost some, want %d", len(got), len(want))
	}
}
