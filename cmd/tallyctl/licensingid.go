package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"

	"github.com/tallyhq/tally/core/licensingid"
)

// licensingIDStatus is the answer of GET /api/v1/licensing-id.
type licensingIDStatus struct {
	Display     string `json:"display"`
	ID          string `json:"id"`
	Fingerprint string `json:"fingerprint"`
	Servers     []struct {
		Host         string `json:"host"`
		ServerStatus string `json:"serverStatus"`
		IDStatus     string `json:"idStatus"`
		Display      string `json:"display"`
		Fingerprint  string `json:"fingerprint"`
	} `json:"servers"`
}

func (c *cli) licensingID(args []string) error {
	sub, args, err := subcommand("licensing-id", args, "show", "export", "backup", "restore")
	if err != nil {
		return err
	}
	switch sub {
	case "backup":
		return c.backupLicensingID(args)
	case "restore":
		return c.restoreLicensingID(args)
	}
	if sub == "show" {
		if _, err := parseArgs(c.commandFlags("licensing-id show"), args, 0, 0, "licensing-id show"); err != nil {
			return err
		}
		var st licensingIDStatus
		return c.get(apiPath("licensing-id"), nil, &st, func() { printLicensingID(c.stdout, st) })
	}
	const shape = "licensing-id export --out FILE"
	fs := c.commandFlags("licensing-id export")
	var out string
	fs.StringVar(&out, "out", "", "")
	if _, err := parseArgs(fs, args, 0, 0, shape); err != nil {
		return err
	}
	if out == "" {
		return usageError("usage: tallyctl %s", shape)
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	data, err := api.do(context.Background(), request{method: http.MethodGet, path: apiPath("licensing-id", "cert")})
	if err != nil {
		return err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("the server sent no PEM certificate")
	}
	fingerprint := licensingid.Fingerprint(block.Bytes)
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	if c.opts.json {
		return c.encodeJSON(map[string]string{"file": out, "fingerprint": fingerprint})
	}
	fmt.Fprintf(c.stdout, "exported the licensing ID certificate to %s\nFingerprint: %s\n", out, fingerprint)
	return nil
}

// maxBackupFile bounds a licensing ID backup file; one is about 1 KiB and
// the format allows 64 KiB.
const maxBackupFile = 128 << 10

// backupLicensingID writes the server's licensing ID, encrypted under the
// backup password, to a new file readable by its owner alone.
func (c *cli) backupLicensingID(args []string) error {
	const shape = "licensing-id backup --out FILE --backup-password-file FILE"
	fs := c.commandFlags("licensing-id backup")
	var out, pwFile string
	fs.StringVar(&out, "out", "", "")
	fs.StringVar(&pwFile, "backup-password-file", "", "")
	if _, err := parseInterleaved(fs, args, 0, 0, shape); err != nil {
		return err
	}
	if out == "" || pwFile == "" {
		return usageError("usage: tallyctl %s", shape)
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists; remove it or choose another --out", out)
	}
	pw, err := readPasswordFile(pwFile)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"password": pw})
	if err != nil {
		return err
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	var st licensingIDStatus
	raw, err := api.do(context.Background(), request{method: http.MethodGet, path: apiPath("licensing-id")})
	if err != nil {
		return err
	}
	if err := decodeResponse(apiPath("licensing-id"), raw, &st); err != nil {
		return err
	}
	data, err := api.do(context.Background(), request{method: http.MethodPost, path: apiPath("licensing-id", "backup"),
		body: body, contentType: "application/json"})
	if err != nil {
		return err
	}
	if err := writeSecretFile(out, data); err != nil {
		return err
	}
	if c.opts.json {
		return c.encodeJSON(map[string]any{"file": out, "fingerprint": st.Fingerprint, "bytes": len(data)})
	}
	fmt.Fprintf(c.stdout, "wrote the licensing ID backup to %s\nFingerprint: %s\nKeep the file and its password apart: together they are the licensing ID.\n", out, st.Fingerprint)
	return nil
}

// restoreLicensingID sends a backup to the server, which keeps the ID for
// its next start.
func (c *cli) restoreLicensingID(args []string) error {
	const shape = "licensing-id restore FILE --backup-password-file FILE"
	fs := c.commandFlags("licensing-id restore")
	var pwFile string
	fs.StringVar(&pwFile, "backup-password-file", "", "")
	rest, err := parseInterleaved(fs, args, 1, 1, shape)
	if err != nil {
		return err
	}
	if pwFile == "" {
		return usageError("usage: tallyctl %s", shape)
	}
	data, err := readLimited(rest[0], maxBackupFile)
	if err != nil {
		return err
	}
	pw, err := readPasswordFile(pwFile)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"password": pw, "backup": base64.StdEncoding.EncodeToString(data)})
	if err != nil {
		return err
	}
	var answer struct {
		Fingerprint     string `json:"fingerprint"`
		RestartRequired bool   `json:"restartRequired"`
	}
	return c.send(http.MethodPost, apiPath("licensing-id", "restore"), body, "application/json", &answer, func() {
		fmt.Fprintf(c.stdout, "restored the licensing ID from %s\nFingerprint: %s\n", rest[0], answer.Fingerprint)
		if answer.RestartRequired {
			fmt.Fprintln(c.stdout, "The server goes on with its current licensing ID: restart tallyd to use it.")
		} else {
			fmt.Fprintln(c.stdout, "It is the licensing ID the server already uses.")
		}
	})
}
