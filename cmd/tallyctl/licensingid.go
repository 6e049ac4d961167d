package main

import (
	"context"
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
	sub, args, err := subcommand("licensing-id", args, "show", "export")
	if err != nil {
		return err
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
