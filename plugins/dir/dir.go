// Package dir is the built-in connector for offline exchange with a back
// office: tallyd's requests and reports are written into a directory that
// is carried to the back office (a USB stick, say), and the back office's
// responses are picked up from it.
//
// The layout under the directory:
//
//	out/request-<seq>.bin    a signed capability request, seq counting from 1
//	out/licensing-id.cert    the licensing-ID certificate (PEM)
//	out/usage-<seq>.bin      a signed usage report
//	in/response-<seq>.bin    the back office's signed response to request <seq>
//
// Exchange is idempotent: the same request bytes keep their sequence
// number, so tallyd calls Exchange again with the same request until the
// response is there (until then it returns plugins.ErrNoResponseYet).
// Files are never deleted; tallyd refuses a replayed response.
//
// The directory is opened anew for every operation, so that a stick
// mounted after the connector started is the one written to. Everything
// stays inside it: out/ and in/ must be real directories, the files read
// must be regular files (no symlinks, no devices) of bounded size, and
// os.Root refuses any path that would leave the directory.
package dir

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/tallyhq/tally/plugins"
)

// Version is the version the connector describes itself with.
const Version = "1"

// Config configures the directory connector.
type Config struct {
	// Dir is the exchange directory; it must exist.
	Dir string
	// MaxFileSize bounds every file read. Default plugins.MaxPayload.
	MaxFileSize int64
}

// Connector exchanges files through a directory.
type Connector struct {
	dir     string
	maxSize int64
	mu      sync.Mutex // one numbering at a time
}

var _ plugins.Connector = (*Connector)(nil)

// New returns the connector for cfg.Dir, creating out/ and in/ in it.
func New(cfg Config) (*Connector, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: no exchange directory", plugins.ErrInvalid)
	}
	if cfg.MaxFileSize <= 0 || cfg.MaxFileSize > plugins.MaxPayload {
		cfg.MaxFileSize = plugins.MaxPayload
	}
	c := &Connector{dir: cfg.Dir, maxSize: cfg.MaxFileSize}
	root, err := c.open()
	if err != nil {
		return nil, err
	}
	return c, root.Close()
}

// open opens the exchange directory and makes sure out/ and in/ are real
// directories in it.
func (c *Connector) open() (*os.Root, error) {
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: exchange directory: %w", plugins.ErrUnreachable, err)
	}
	for _, sub := range []string{"out", "in"} {
		if err := root.Mkdir(sub, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			root.Close()
			return nil, fmt.Errorf("exchange directory: %w", err)
		}
		if fi, err := root.Lstat(sub); err != nil || !fi.IsDir() {
			root.Close()
			return nil, fmt.Errorf("%w: %s/%s is not a directory", plugins.ErrInvalid, c.dir, sub)
		}
	}
	return root, nil
}

// Describe says this is the offline directory connector.
func (c *Connector) Describe(context.Context) (plugins.Description, error) {
	return plugins.Description{Name: "dir", Version: Version, Offline: true}, nil
}

// Exchange writes request as out/request-<seq>.bin (or finds it written
// before) and returns in/response-<seq>.bin when the back office has put
// it there.
func (c *Connector) Exchange(ctx context.Context, request []byte) ([]byte, error) {
	var resp []byte
	err := c.with(ctx, func(root *os.Root) error {
		seq, err := c.number(root, "out", "request-", request)
		if err != nil {
			return err
		}
		name := path.Join("in", fileName("response-", seq))
		resp, err = c.read(root, name)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("request %d is in out/; %s: %w", seq, name, plugins.ErrNoResponseYet)
		}
		return err
	})
	return resp, err
}

// RegisterLicensingID writes the certificate as out/licensing-id.cert.
func (c *Connector) RegisterLicensingID(ctx context.Context, certDER []byte) error {
	return c.with(ctx, func(root *os.Root) error {
		return c.write(root, "out/licensing-id.cert", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
	})
}

// ReportUsage writes report as out/usage-<seq>.bin, once for the same
// bytes.
func (c *Connector) ReportUsage(ctx context.Context, report []byte) error {
	return c.with(ctx, func(root *os.Root) error {
		_, err := c.number(root, "out", "usage-", report)
		return err
	})
}

// with runs fn on the opened exchange directory, one operation at a time.
func (c *Connector) with(ctx context.Context, fn func(root *os.Root) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	root, err := c.open()
	if err != nil {
		return err
	}
	defer root.Close()
	return fn(root)
}

// number returns the sequence number of data among the files
// <dir>/<prefix><seq>.bin, writing it under the next free number unless a
// file with the same bytes is there already.
func (c *Connector) number(root *os.Root, dir, prefix string, data []byte) (uint64, error) {
	if int64(len(data)) > c.maxSize {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", plugins.ErrTooLarge, len(data), c.maxSize)
	}
	d, err := root.Open(dir)
	if err != nil {
		return 0, err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	var last uint64
	for _, e := range entries {
		seq, ok := parseSeq(e.Name(), prefix)
		if !ok {
			continue
		}
		last = max(last, seq)
		if info, err := e.Info(); err != nil || !info.Mode().IsRegular() || info.Size() != int64(len(data)) {
			continue
		}
		if same, err := c.read(root, path.Join(dir, e.Name())); err == nil && string(same) == string(data) {
			return seq, nil
		}
	}
	seq := last + 1
	return seq, c.write(root, path.Join(dir, fileName(prefix, seq)), data)
}

// fileName is <prefix><seq>.bin.
func fileName(prefix string, seq uint64) string {
	return prefix + strconv.FormatUint(seq, 10) + ".bin"
}

// maxSeqDigits keeps sequence numbers far from overflow.
const maxSeqDigits = 12

// parseSeq reads the sequence number of a file called <prefix><seq>.bin,
// seq being a decimal from 1 without leading zeros. Names of other files
// (written by hand, left by the back office) give false.
func parseSeq(name, prefix string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ".bin")
	if !ok || digits == "" || len(digits) > maxSeqDigits || digits[0] == '0' {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// read returns the content of the regular file name, refusing anything
// else and anything over the size limit.
func (c *Connector) read(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", plugins.ErrInvalid, name)
	}
	if fi.Size() > c.maxSize {
		return nil, fmt.Errorf("%w: %s has %d bytes, limit %d", plugins.ErrTooLarge, name, fi.Size(), c.maxSize)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, c.maxSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > c.maxSize {
		return nil, fmt.Errorf("%w: %s grew past %d bytes", plugins.ErrTooLarge, name, c.maxSize)
	}
	return data, nil
}

// write replaces name with data atomically: a synced temporary file beside
// it is renamed over it, and the directory is synced.
func (c *Connector) write(root *os.Root, name string, data []byte) error {
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".tmp")
	// A leftover of a killed run, or anything planted under that name, goes.
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", name, err)
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	d, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
