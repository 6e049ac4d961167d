package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// smallDisk is a small ext4 file system on a loop device, mounted on the
// host and bound into one node as its /data, so that it can be filled
// without filling the host's disk. It outlives the node's restarts, as a
// volume does.
type smallDisk struct {
	image string // the file holding the file system
	dir   string // where it is mounted
}

func run1(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newSmallDisk makes and mounts a file system of size bytes, owned by the
// image's user.
func newSmallDisk(ctx context.Context, run string, size int64) (*smallDisk, error) {
	base := filepath.Join(os.TempDir(), run+"-disk")
	d := &smallDisk{image: base + ".img", dir: base}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(d.image)
	if err != nil {
		return nil, err
	}
	f.Truncate(size)
	f.Close()
	if err := run1(ctx, "mkfs.ext4", "-q", "-F", d.image); err != nil {
		d.remove()
		return nil, err
	}
	if err := run1(ctx, "mount", "-o", "loop", d.image, d.dir); err != nil {
		d.remove()
		return nil, err
	}
	if err := os.Chown(d.dir, 10001, 10001); err != nil {
		d.remove()
		return nil, err
	}
	os.Chmod(d.dir, 0o700)
	return d, nil
}

func (d *smallDisk) fillPath() string { return filepath.Join(d.dir, "chaos-fill") }

// fill takes every block an unprivileged user could write.
func (d *smallDisk) fill() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, err
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	f, err := os.Create(d.fillPath())
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if free > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, free); err != nil {
			return 0, fmt.Errorf("fallocate %d bytes: %w", free, err)
		}
	}
	return free, nil
}

func (d *smallDisk) empty() error {
	err := os.Remove(d.fillPath())
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// remove unmounts the file system and deletes it.
func (d *smallDisk) remove() error {
	err := run1(context.Background(), "umount", d.dir)
	os.Remove(d.dir)
	os.Remove(d.image)
	return err
}
