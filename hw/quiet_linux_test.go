//go:build linux

package hw

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDetectPrintsNothing points file descriptors 1 and 2 at a file while
// Detect reads trees where ghw meets missing files, which it would otherwise
// report on stderr. GHW_LOG_LEVEL=debug makes ghw's own logger as loud as it
// gets.
func TestDetectPrintsNothing(t *testing.T) {
	t.Setenv("GHW_LOG_LEVEL", "debug")
	out, err := os.CreateTemp(t.TempDir(), "output")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	roots := []string{t.TempDir(), ""}
	for name := range fixtures {
		roots = append(roots, filepath.Join("testdata", name))
	}

	errs := withOutputTo(t, out, func() []error {
		var errs []error
		for _, root := range roots {
			if _, err := Detect(Config{Root: root}); err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	})

	for _, err := range errs {
		t.Errorf("Detect: %v", err)
	}
	printed, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(printed) > 0 {
		t.Errorf("Detect printed:\n%s", printed)
	}
}

// withOutputTo runs f with stdout and stderr going to out, and restores them
// before it returns. f must not use t.
func withOutputTo(t *testing.T, out *os.File, f func() []error) []error {
	t.Helper()
	var saved [3]int
	for _, fd := range []int{1, 2} {
		dup, err := syscall.Dup(fd)
		if err != nil {
			t.Fatal(err)
		}
		saved[fd] = dup
	}
	defer func() {
		for _, fd := range []int{1, 2} {
			if err := syscall.Dup3(saved[fd], fd, 0); err != nil {
				panic(err)
			}
			syscall.Close(saved[fd])
		}
	}()
	for _, fd := range []int{1, 2} {
		if err := syscall.Dup3(int(out.Fd()), fd, 0); err != nil {
			t.Fatal(err)
		}
	}
	return f()
}
