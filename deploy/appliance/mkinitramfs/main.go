// Command mkinitramfs packs a directory into a gzip-compressed cpio archive
// in the "newc" format, the form Linux unpacks as its initramfs.
//
//	mkinitramfs -root DIR -o FILE [-node PATH:c|b:MAJOR:MINOR:MODE]...
//
// Every entry is owned by root and carries the same time (SOURCE_DATE_EPOCH,
// or 0), so the same tree gives the same bytes on any machine and no
// privileges are needed to build it. Device nodes, which only root could
// create in DIR, are given with -node; /dev/console must be among them for
// the kernel to give /init a console. The build machine needs no cpio.
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

type nodeList []deviceNode

func (l *nodeList) String() string { return fmt.Sprint(*l) }
func (l *nodeList) Set(v string) error {
	n, err := parseNode(v)
	if err != nil {
		return err
	}
	*l = append(*l, n)
	return nil
}

func run(args []string) error {
	fl := flag.NewFlagSet("mkinitramfs", flag.ContinueOnError)
	root := fl.String("root", "", "the directory that becomes /")
	out := fl.String("o", "", "the .cpio.gz file to write")
	var nodes nodeList
	fl.Var(&nodes, "node", "a device node PATH:c|b:MAJOR:MINOR:MODE (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *root == "" || *out == "" || fl.NArg() > 0 {
		return errors.New("usage: mkinitramfs -root DIR -o FILE [-node PATH:c|b:MAJOR:MINOR:MODE]...")
	}
	var mtime int64
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil || t < 0 || t > 0xffffffff {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a time", s)
		}
		mtime = t
	}

	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := bufio.NewWriter(f)
	zw, err := gzip.NewWriterLevel(buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	w := &newcWriter{w: zw, mtime: uint32(mtime)}
	if err := w.addTree(*root); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := w.addNode(n); err != nil {
			return err
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// deviceNode is a character or block device to put in the archive.
type deviceNode struct {
	path         string
	typ          uint32 // modeCharDevice or modeBlockDevice
	major, minor uint32
	perm         uint32
}

// parseNode reads PATH:c|b:MAJOR:MINOR:MODE, MODE in octal.
func parseNode(v string) (deviceNode, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 5 {
		return deviceNode{}, fmt.Errorf("-node %q: want PATH:c|b:MAJOR:MINOR:MODE", v)
	}
	n := deviceNode{path: strings.TrimPrefix(parts[0], "/")}
	switch parts[1] {
	case "c":
		n.typ = modeCharDevice
	case "b":
		n.typ = modeBlockDevice
	default:
		return deviceNode{}, fmt.Errorf("-node %q: type %q is neither c nor b", v, parts[1])
	}
	major, err1 := strconv.ParseUint(parts[2], 10, 32)
	minor, err2 := strconv.ParseUint(parts[3], 10, 32)
	perm, err3 := strconv.ParseUint(parts[4], 8, 32)
	if err := errors.Join(err1, err2, err3); err != nil || n.path == "" || perm > 0o7777 {
		return deviceNode{}, fmt.Errorf("-node %q: want PATH:c|b:MAJOR:MINOR:MODE", v)
	}
	n.major, n.minor, n.perm = uint32(major), uint32(minor), uint32(perm)
	return n, nil
}

// The file types of a cpio mode, as in stat(2).
const (
	modeDir         = 0o040000
	modeRegular     = 0o100000
	modeSymlink     = 0o120000
	modeCharDevice  = 0o020000
	modeBlockDevice = 0o060000
)

// newcWriter writes cpio entries in the "newc" (SVR4, no CRC) format.
type newcWriter struct {
	w     io.Writer
	mtime uint32
	ino   uint32
	n     int64 // bytes written, for padding
}

// addTree writes root's contents, parents before children, in lexical
// order. Only directories, regular files and symbolic links are allowed.
func (w *newcWriter) addTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := uint32(info.Mode().Perm())
		if info.Mode()&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		switch {
		case d.IsDir():
			return w.entry(name, modeDir|perm, 0, 0, nil)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return w.entry(name, modeSymlink|0o777, 0, 0, []byte(target))
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return w.entry(name, modeRegular|perm, 0, 0, data)
		default:
			return fmt.Errorf("%s: neither a directory, a file nor a symbolic link (give device nodes with -node)", path)
		}
	})
}

func (w *newcWriter) addNode(n deviceNode) error {
	return w.entry(n.path, n.typ|n.perm, n.major, n.minor, nil)
}

// close writes the trailer entry.
func (w *newcWriter) close() error {
	return w.entry("TRAILER!!!", 0, 0, 0, nil)
}

func (w *newcWriter) entry(name string, mode, rdevMajor, rdevMinor uint32, data []byte) error {
	w.ino++
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	ino, mtime := w.ino, w.mtime
	if name == "TRAILER!!!" {
		ino, nlink, mtime = 0, 1, 0
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if err := w.write([]byte(hdr)); err != nil {
		return err
	}
	if err := w.write(append([]byte(name), 0)); err != nil {
		return err
	}
	if err := w.pad(); err != nil {
		return err
	}
	if err := w.write(data); err != nil {
		return err
	}
	return w.pad()
}

func (w *newcWriter) write(b []byte) error {
	n, err := w.w.Write(b)
	w.n += int64(n)
	return err
}

// pad aligns the stream to four bytes, as newc requires after each name
// and each file's data.
func (w *newcWriter) pad() error {
	if r := w.n % 4; r != 0 {
		return w.write(make([]byte, 4-r))
	}
	return nil
}
