package hw

import (
	"os"
	"path/filepath"
	"strings"
)

// sysfs reads files under the root that stands for "/". Every read hw makes
// itself goes through it, next to the ones ghw makes under the same root.
type sysfs struct {
	root string
}

// path joins elem under the root. Callers pass fixed names and names read
// from directory listings, which cannot climb out of it.
func (fs sysfs) path(elem ...string) string {
	return filepath.Join(append([]string{fs.root}, elem...)...)
}

// read returns a file's bytes, or nil when it cannot be read: sysfs
// attributes that a driver does not support fail with a variety of errors,
// and all of them mean the value is missing.
func (fs sysfs) read(elem ...string) []byte {
	b, err := os.ReadFile(fs.path(elem...))
	if err != nil {
		return nil
	}
	return b
}

// attr returns a text attribute with surrounding space and NULs trimmed, or
// "" when it cannot be read.
func (fs sysfs) attr(elem ...string) string {
	return strings.Trim(string(fs.read(elem...)), " \t\r\n\x00")
}

// exists reports whether the path is present, without following a final
// symlink.
func (fs sysfs) exists(elem ...string) bool {
	_, err := os.Lstat(fs.path(elem...))
	return err == nil
}

// isDir reports whether the path is a directory, following symlinks.
func (fs sysfs) isDir(elem ...string) bool {
	fi, err := os.Stat(fs.path(elem...))
	return err == nil && fi.IsDir()
}
