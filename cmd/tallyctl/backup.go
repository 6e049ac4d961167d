package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"

	"github.com/tallyhq/tally/core"
)

// maxDatabaseBackupFile bounds a backup file read for restore: the
// server takes at most core.MaxRequestBytes/2, sealing adds little.
const maxDatabaseBackupFile = core.MaxRequestBytes/2 + 1<<10

// backup handles `backup create --out FILE` and `backup restore FILE`: a
// database backup is the whole replicated state, as secret as the server's
// data directory; restoring one never changes the licensing ID. With
// --backup-password-file the file is sealed under that password
// (core.SealBackup) here, before it is written, and opened here before it
// is sent back.
func (c *cli) backup(args []string) error {
	sub, args, err := subcommand("backup", args, "create", "restore")
	if err != nil {
		return err
	}
	if sub == "create" {
		const shape = "backup create --out FILE [--backup-password-file FILE]"
		fs := c.commandFlags("backup create")
		var out, pwFile string
		fs.StringVar(&out, "out", "", "")
		fs.StringVar(&pwFile, "backup-password-file", "", "")
		if _, err := parseInterleaved(fs, args, 0, 0, shape); err != nil {
			return err
		}
		if out == "" {
			return usageError("usage: tallyctl %s", shape)
		}
		if _, err := os.Stat(out); err == nil {
			return fmt.Errorf("%s exists; remove it or choose another --out", out)
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		var pw string
		if pwFile != "" {
			if pw, err = readPasswordFile(pwFile); err != nil {
				return err
			}
		}
		data, err := api.do(context.Background(), request{method: http.MethodGet, path: apiPath("backup")})
		if err != nil {
			return err
		}
		if pwFile != "" {
			if data, err = core.SealBackup(data, []byte(pw), rand.Reader); err != nil {
				return err
			}
		}
		if err := writeSecretFile(out, data); err != nil {
			return err
		}
		if c.opts.json {
			return c.encodeJSON(map[string]any{"file": out, "bytes": len(data), "sealed": pwFile != ""})
		}
		if pwFile != "" {
			fmt.Fprintf(c.stdout, "wrote %s (%d bytes), sealed under the backup password: keep the file and the password apart\n", out, len(data))
		} else {
			fmt.Fprintf(c.stdout, "wrote %s (%d bytes); it holds password hashes and keys: keep it safe, or seal it with --backup-password-file\n", out, len(data))
		}
		return nil
	}
	const shape = "backup restore FILE [--backup-password-file FILE]"
	fs := c.commandFlags("backup restore")
	var pwFile string
	fs.StringVar(&pwFile, "backup-password-file", "", "")
	rest, err := parseInterleaved(fs, args, 1, 1, shape)
	if err != nil {
		return err
	}
	data, err := readLimited(rest[0], maxDatabaseBackupFile)
	if err != nil {
		return err
	}
	switch sealed := core.IsSealedBackup(data); {
	case sealed && pwFile == "":
		return usageError("%s is sealed: give its password with --backup-password-file", rest[0])
	case !sealed && pwFile != "":
		return fmt.Errorf("%s is not a sealed backup; restore it without --backup-password-file", rest[0])
	case sealed:
		pw, err := readPasswordFile(pwFile)
		if err != nil {
			return err
		}
		if data, err = core.OpenBackup(data, []byte(pw)); err != nil {
			return err
		}
		defer clear(data)
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	if _, err := api.do(context.Background(), request{method: http.MethodPost, path: apiPath("backup", "restore"),
		body: data, contentType: "application/octet-stream"}); err != nil {
		return err
	}
	if c.opts.json {
		return nil
	}
	fmt.Fprintf(c.stdout, "restored %s; the licensing ID is unchanged\n", rest[0])
	return nil
}

// writeSecretFile creates path with mode 0600, refusing to replace a file.
func writeSecretFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
