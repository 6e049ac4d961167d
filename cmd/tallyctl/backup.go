package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
)

// backup handles `backup create --out FILE` and `backup restore FILE`: a
// database backup is the whole replicated state, as secret as the server's
// data directory; restoring one never changes the licensing ID.
func (c *cli) backup(args []string) error {
	sub, args, err := subcommand("backup", args, "create", "restore")
	if err != nil {
		return err
	}
	if sub == "create" {
		const shape = "backup create --out FILE"
		fs := c.commandFlags("backup create")
		var out string
		fs.StringVar(&out, "out", "", "")
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
		data, err := api.do(context.Background(), request{method: http.MethodGet, path: apiPath("backup")})
		if err != nil {
			return err
		}
		if err := writeSecretFile(out, data); err != nil {
			return err
		}
		if c.opts.json {
			return c.encodeJSON(map[string]any{"file": out, "bytes": len(data)})
		}
		fmt.Fprintf(c.stdout, "wrote %s (%d bytes); it holds password hashes and keys: keep it safe\n", out, len(data))
		return nil
	}
	const shape = "backup restore FILE"
	rest, err := parseInterleaved(c.commandFlags("backup restore"), args, 1, 1, shape)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(rest[0])
	if err != nil {
		return err
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
