package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDataFormat(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // path -> content; "" content for a directory marker
		want    string            // FORMAT afterwards
		wantErr bool
		logged  bool
	}{
		{name: "new directory", want: "tally-data 2\n"},
		{name: "format 1 (no FORMAT file)", files: map[string]string{"node-id": "n1\n"}, want: "tally-data 2\n", logged: true},
		{name: "format 1 with only a raft directory", files: map[string]string{"raft/raft.db": "x"}, want: "tally-data 2\n", logged: true},
		{name: "current format", files: map[string]string{"FORMAT": "tally-data 2\n", "node-id": "n1\n"}, want: "tally-data 2\n"},
		{name: "newer format", files: map[string]string{"FORMAT": "tally-data 3\n"}, want: "tally-data 3\n", wantErr: true},
		{name: "garbage", files: map[string]string{"FORMAT": "ext4\n"}, want: "ext4\n", wantErr: true},
		{name: "zero", files: map[string]string{"FORMAT": "tally-data 0\n"}, want: "tally-data 0\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for path, content := range tt.files {
				full := filepath.Join(dir, path)
				if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var log bytes.Buffer
			err := prepareDataFormat(dir, slog.New(slog.NewTextHandler(&log, nil)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("prepareDataFormat: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errDataFormat) {
				t.Errorf("error %v does not wrap errDataFormat", err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("FORMAT holds %q, want %q", got, tt.want)
			}
			if logged := strings.Contains(log.String(), "data directory upgraded"); logged != tt.logged {
				t.Errorf("upgrade logged %v, want %v:\n%s", logged, tt.logged, log.String())
			}
		})
	}
}

// TestUpgradeFromFormat1 starts this tallyd on a data directory that the
// release before the FORMAT file wrote (testdata/upgrade/format1.tar.gz:
// rights for cad and viewer, press-old holding 2 of cad 1.0 until 2036, a
// READ user, an unused one-time key). Nothing is lost: the licensing ID,
// the lease, the users and the key are there, and the directory now says
// format 2. A directory from a newer release is refused and left alone.
func TestUpgradeFromFormat1(t *testing.T) {
	const password = "upgrade test password"
	r := newClusterRig(t)
	untar(t, "testdata/upgrade/format1.tar.gz", r.work)
	if err := os.Rename(filepath.Join(r.work, "data"), filepath.Join(r.work, "v1node")); err != nil {
		t.Fatal(err)
	}
	if err := r.start("v1node", "--producer-key", filepath.Join(r.work, "producer.pub")); err != nil {
		t.Fatal(err)
	}
	ctl := func(user, pw string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(r.bin, "tallyctl"), append([]string{"--server", r.urls["v1node"], "--insecure", "--user", user, "--json"}, args...)...)
		cmd.Env = append(os.Environ(), "TALLY_PASSWORD="+pw)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tallyctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var health struct{ Fingerprint string }
	if err := json.Unmarshal([]byte(ctl("admin", password, "health")), &health); err != nil {
		t.Fatal(err)
	}
	if want := "6A:C8:78:00:B8:7A:01:47:B6:C7:66:B6:0B:BD:E2:E5:D0:7F:EF:44:ED:73:42:CB:4F:2B:2E:9A:39:E1:EA:6A"; health.Fingerprint != want {
		t.Errorf("licensing ID %s after the upgrade, want %s", health.Fingerprint, want)
	}
	if out := ctl("admin", password, "devices"); !strings.Contains(out, "press-old") {
		t.Errorf("press-old is gone:\n%s", out)
	}
	var features struct {
		Items []struct {
			Name, Version string
			Used          int
		}
	}
	if err := json.Unmarshal([]byte(ctl("admin", password, "features")), &features); err != nil {
		t.Fatal(err)
	}
	if len(features.Items) != 2 || features.Items[0].Name != "cad" || features.Items[0].Used != 2 {
		t.Errorf("features after the upgrade: %+v, want cad 1.0 with 2 used (press-old's) and viewer", features.Items)
	}
	if out := ctl("reader", "reader password 1", "features"); !strings.Contains(out, "viewer") {
		t.Errorf("the READ user cannot read the features:\n%s", out)
	}
	if out := ctl("admin", password, "keys", "list"); !strings.Contains(out, "kept across the upgrade") {
		t.Errorf("the one-time key is gone:\n%s", out)
	}
	format, err := os.ReadFile(filepath.Join(r.work, "v1node", "FORMAT"))
	if err != nil || string(format) != "tally-data 2\n" {
		t.Errorf("FORMAT after the upgrade: %q, %v", format, err)
	}

	// A directory a newer release wrote is refused, untouched.
	r.kill("v1node")
	newer := []byte("tally-data 99\n")
	if err := os.WriteFile(filepath.Join(r.work, "v1node", "FORMAT"), newer, 0o600); err != nil {
		t.Fatal(err)
	}
	err = r.start("v1node")
	if err == nil || !strings.Contains(err.Error(), "format 99") {
		t.Fatalf("tallyd on a format 99 directory: %v, want a refusal naming the format", err)
	}
	if got, _ := os.ReadFile(filepath.Join(r.work, "v1node", "FORMAT")); !bytes.Equal(got, newer) {
		t.Errorf("FORMAT changed to %q", got)
	}
}

// untar unpacks a .tar.gz of directories and regular files into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(filepath.Separator)) {
			t.Fatalf("%s leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o700)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(path, data, os.FileMode(h.Mode)&0o777)
			}
		default:
			t.Fatalf("%s: unexpected entry type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
