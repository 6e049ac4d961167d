package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/core/atomicfile"
)

// The data directory says which layout it has in its FORMAT file, so that
// a tallyd can upgrade one written by an older release and refuses one
// written by a newer one instead of misreading it.
//
// Formats:
//
//	1  releases without a FORMAT file: raft/, identity.*, tls.*, node-id,
//	   cluster/, initial-admin-password (docs/operations.md)
//	2  format 1 and the FORMAT file
const (
	dataFormat     = 2
	dataFormatFile = "FORMAT"
	// formatPrefix starts the file's one line, which reads
	// "tally-data 2".
	formatPrefix = "tally-data "
)

// dataUpgrades turns format n into format n+1, in place; each step is
// safe to run again if tallyd stops half-way, since the FORMAT file is
// written only after the step.
var dataUpgrades = map[int]func(dir string) error{
	// Format 2 only adds the FORMAT file.
	1: func(string) error { return nil },
}

// errDataFormat is wrapped when the data directory's format cannot be
// used by this tallyd.
var errDataFormat = errors.New("data directory format")

// prepareDataFormat reads the format of the data directory dir, upgrades
// an older one step by step, and writes the FORMAT file of a new one. It
// refuses a format newer than this binary's or a FORMAT file it cannot
// read, changing nothing.
func prepareDataFormat(dir string, log *slog.Logger) error {
	format, err := readDataFormat(dir)
	if err != nil {
		return err
	}
	switch {
	case format == dataFormat:
		return nil
	case format == 0:
		return writeDataFormat(dir)
	case format > dataFormat:
		return fmt.Errorf("%w %d: this tallyd understands format %d and older; run a newer tallyd, or restore the copy of the data directory taken before the upgrade", errDataFormat, format, dataFormat)
	}
	from := format
	for ; format < dataFormat; format++ {
		upgrade, ok := dataUpgrades[format]
		if !ok {
			return fmt.Errorf("%w %d: no upgrade to format %d", errDataFormat, format, format+1)
		}
		if err := upgrade(dir); err != nil {
			return fmt.Errorf("upgrade the data directory from format %d: %w", format, err)
		}
	}
	if err := writeDataFormat(dir); err != nil {
		return err
	}
	log.Info("data directory upgraded", "dir", dir, "from", from, "to", dataFormat)
	return nil
}

// readDataFormat returns the format of dir: its FORMAT file's, 1 for a
// directory that an older release wrote, 0 for a new one.
func readDataFormat(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, dataFormatFile))
	if errors.Is(err, fs.ErrNotExist) {
		for _, name := range []string{"raft", "node-id", "identity.key"} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				return 1, nil
			}
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the data directory format: %w", err)
	}
	line := strings.TrimSuffix(string(b), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(line, formatPrefix))
	if !strings.HasPrefix(line, formatPrefix) || err != nil || n < 1 {
		return 0, fmt.Errorf("%w: %s holds %q, want %q", errDataFormat, filepath.Join(dir, dataFormatFile), line, fmt.Sprint(formatPrefix, dataFormat))
	}
	return n, nil
}

func writeDataFormat(dir string) error {
	if err := atomicfile.Write(filepath.Join(dir, dataFormatFile), fmt.Appendf(nil, "%s%d\n", formatPrefix, dataFormat), 0o600); err != nil {
		return fmt.Errorf("write the data directory format: %w", err)
	}
	return nil
}
