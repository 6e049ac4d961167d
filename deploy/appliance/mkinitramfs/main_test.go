package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// entry is one member of a newc archive as the kernel reads it.
type entry struct {
	name                 string
	mode, uid, gid       uint32
	mtime                uint32
	rdevMajor, rdevMinor uint32
	data                 string
}

// readNewc parses a newc archive strictly: magic, hexadecimal fields,
// four-byte alignment, and a trailer at the end.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header at %d, field %d: %v", off, i, err)
			}
			return uint32(v)
		}
		e := entry{mode: field(1), uid: field(2), gid: field(3), mtime: field(5), rdevMajor: field(9), rdevMinor: field(10)}
		size, nameSize := int(field(6)), int(field(11))
		off += 110
		e.name = string(b[off : off+nameSize-1])
		if b[off+nameSize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", e.name)
		}
		off += nameSize
		align()
		e.data = string(b[off : off+size])
		off += size
		align()
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func build(t *testing.T, root string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	if err := run(append([]string{"-root", root, "-o", out}, args...)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArchiveHoldsTheTreeOwnedByRoot(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin", "busybox"), []byte("ELF"), 0o755))
	must(os.Symlink("busybox", filepath.Join(root, "bin", "sh")))
	must(os.WriteFile(filepath.Join(root, "init"), []byte("#!/bin/sh\nexec /sbin/init\n"), 0o750))

	got := readNewc(t, build(t, root, "-node", "/dev/console:c:5:1:600"))
	want := []entry{
		{name: "bin", mode: 0o040755},
		{name: "bin/busybox", mode: 0o100755, data: "ELF"},
		{name: "bin/sh", mode: 0o120777, data: "busybox"},
		{name: "dev", mode: 0o040755},
		{name: "init", mode: 0o100750, data: "#!/bin/sh\nexec /sbin/init\n"},
		{name: "dev/console", mode: 0o020600, rdevMajor: 5, rdevMinor: 1},
	}
	for i := range want {
		want[i].mtime = 1700000000
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("archive:\n got %v\nwant %v", got, want)
	}
}

func TestArchiveIsReproducible(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := build(t, root)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "a"), later, later); err != nil {
		t.Fatal(err)
	}
	if second := build(t, root); !bytes.Equal(first, second) {
		t.Error("the same tree gave different archives")
	}
}

func TestBadNodesAreRefused(t *testing.T) {
	for _, v := range []string{"/dev/console", "/dev/console:x:5:1:600", "/dev/console:c:five:1:600", ":c:5:1:600", "/dev/console:c:5:1:99999"} {
		if _, err := parseNode(v); err == nil {
			t.Errorf("parseNode(%q) succeeded", v)
		}
	}
}
