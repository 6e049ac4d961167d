package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

// firstAuthKey is a first-authentication key as the API sends it.
type firstAuthKey struct {
	ID          string        `json:"id"`
	Type        string        `json:"type"`
	Secret      string        `json:"secret"`
	Shown       bool          `json:"shown"`
	Description string        `json:"description"`
	State       string        `json:"state"`
	Created     time.Time     `json:"created"`
	UsedBy      hostid.HostID `json:"usedBy,omitzero"`
	UsedAt      time.Time     `json:"usedAt,omitzero"`
	Uses        uint64        `json:"uses"`
}

// keyType reads the --type of the keys commands: one-time or mass, in any
// case, with - or _.
func keyType(s string) (string, error) {
	switch strings.ReplaceAll(strings.ToUpper(s), "-", "_") {
	case "ONE_TIME":
		return "ONE_TIME", nil
	case "MASS":
		return "MASS", nil
	}
	return "", usageError("--type %q: want one-time or mass", s)
}

func (c *cli) keys(args []string) error {
	sub, args, err := subcommand("keys", args, "list", "create", "activate", "deactivate", "describe", "delete")
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return c.listKeys(args)
	case "create":
		return c.createKeys(args)
	case "activate", "deactivate":
		rest, err := parseInterleaved(c.commandFlags("keys "+sub), args, 1, 1, "keys "+sub+" ID")
		if err != nil {
			return err
		}
		return c.updateKey(rest[0], map[string]any{"active": sub == "activate"}, sub+"d")
	case "describe":
		rest, err := parseInterleaved(c.commandFlags("keys describe"), args, 2, 2, "keys describe ID TEXT")
		if err != nil {
			return err
		}
		return c.updateKey(rest[0], map[string]any{"description": rest[1]}, "described")
	default: // delete
		rest, err := parseInterleaved(c.commandFlags("keys delete"), args, 1, 1, "keys delete ID")
		if err != nil {
			return err
		}
		return c.send(http.MethodDelete, apiPath("keys", rest[0]), nil, "", nil, func() {
			fmt.Fprintf(c.stdout, "deleted key %s\n", rest[0])
		})
	}
}

func (c *cli) listKeys(args []string) error {
	const shape = "keys list [--type one-time|mass] [--state active|inactive|used] [--show] [--page P --page-size S]"
	fs := c.commandFlags("keys list")
	var typ, state string
	var show bool
	var pf pageFlags
	fs.StringVar(&typ, "type", "", "")
	fs.StringVar(&state, "state", "", "")
	fs.BoolVar(&show, "show", false, "")
	pf.add(fs)
	if _, err := parseInterleaved(fs, args, 0, 0, shape); err != nil {
		return err
	}
	q, err := pf.query()
	if err != nil {
		return err
	}
	if typ != "" {
		t, err := keyType(typ)
		if err != nil {
			return err
		}
		q.Set("type", t)
	}
	if state != "" {
		switch s := strings.ToLower(state); s {
		case "active", "inactive", "used":
			q.Set("state", s)
		default:
			return usageError("--state %q: want active, inactive or used", state)
		}
	}
	if show {
		q.Set("show", "true")
	}
	var p page[firstAuthKey]
	return c.get(apiPath("keys"), q, &p, func() {
		printKeys(c.stdout, p.Items)
		c.footer("keys", len(p.Items), p.Total, p.Page)
	})
}

func (c *cli) createKeys(args []string) error {
	const shape = "keys create --type one-time --count N [--description D] | keys create --type mass [--password-file F] [--description D]"
	fs := c.commandFlags("keys create")
	var typ, description, secretFile string
	var count int
	fs.StringVar(&typ, "type", "", "")
	fs.IntVar(&count, "count", 0, "")
	fs.StringVar(&description, "description", "", "")
	// --password-file after "create" is the mass key's password; the
	// login password is the one given before the command.
	fs.StringVar(&secretFile, "password-file", "", "")
	if _, err := parseInterleaved(fs, args, 0, 0, shape); err != nil {
		return err
	}
	if typ == "" {
		return usageError("usage: tallyctl %s", shape)
	}
	t, err := keyType(typ)
	if err != nil {
		return err
	}
	req := map[string]any{"type": t}
	if description != "" {
		req["description"] = description
	}
	switch t {
	case "ONE_TIME":
		if secretFile != "" {
			return usageError("one-time keys get random secrets; --password-file is for --type mass")
		}
		if count < 1 {
			return usageError("--count N (1 to 10000) is required for one-time keys")
		}
		req["count"] = count
	default:
		if count > 1 {
			return usageError("a mass key is made one at a time; leave out --count")
		}
		if secretFile != "" {
			secret, err := readPasswordFile(secretFile)
			if err != nil {
				return err
			}
			req["secret"] = secret
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var created struct {
		Total int            `json:"total"`
		Items []firstAuthKey `json:"items"`
	}
	return c.send(http.MethodPost, apiPath("keys"), body, "application/json", &created, func() {
		printKeys(c.stdout, created.Items)
		kind := "one-time"
		if t == "MASS" {
			kind = "mass"
		}
		fmt.Fprintf(c.stdout, "created %d %s keys; `tallyctl keys list --show` shows their secrets again\n", created.Total, kind)
	})
}

// updateKey changes a key and says what was done.
func (c *cli) updateKey(id string, change map[string]any, done string) error {
	body, err := json.Marshal(change)
	if err != nil {
		return err
	}
	var k firstAuthKey
	return c.send(http.MethodPut, apiPath("keys", id), body, "application/json", &k, func() {
		fmt.Fprintf(c.stdout, "%s key %s: %s, %q\n", done, k.ID, keyState(k.State), k.Description)
	})
}

// keyTypeWords names a key type as a column shows it.
func keyTypeWords(t string) string {
	return strings.ToLower(strings.ReplaceAll(t, "_", "-"))
}

func keyState(s string) string { return strings.ToLower(s) }

// printKeys writes the First-authentication keys view: type, key (masked
// unless shown), description, state, created, used by and when.
func printKeys(out io.Writer, items []firstAuthKey) {
	rows := make([][]string, 0, len(items))
	for _, k := range items {
		usedBy := "-"
		if k.UsedBy.Value != "" {
			usedBy = k.UsedBy.String()
		}
		rows = append(rows, []string{k.ID, keyTypeWords(k.Type), k.Secret, dash(k.Description), keyState(k.State),
			stamp(k.Created, "-"), usedBy, stamp(k.UsedAt, "-")})
	}
	table(out, "ID\tTYPE\tKEY\tDESCRIPTION\tSTATE\tCREATED\tUSED BY\tUSED AT", rows)
}

// maxClientKeyFile bounds the file client-key upload reads; the server
// takes at most 4 KiB of DER.
const maxClientKeyFile = 64 << 10

// clientKeyInfo is the answer of GET and POST /api/v1/client-key.
type clientKeyInfo struct {
	Present     bool   `json:"present"`
	Bits        int    `json:"bits"`
	Fingerprint string `json:"fingerprint"`
}

func (c *cli) clientKey(args []string) error {
	sub, args, err := subcommand("client-key", args, "upload", "show")
	if err != nil {
		return err
	}
	var info clientKeyInfo
	print := func() {
		if !info.Present {
			fmt.Fprintln(c.stdout, "no client key is installed")
			return
		}
		printFields(c.stdout, [][2]string{{"Client key", fmt.Sprintf("RSA, %d bits", info.Bits)}, {"Fingerprint", info.Fingerprint}})
	}
	if sub == "show" {
		if _, err := parseInterleaved(c.commandFlags("client-key show"), args, 0, 0, "client-key show"); err != nil {
			return err
		}
		return c.get(apiPath("client-key"), nil, &info, print)
	}
	rest, err := parseInterleaved(c.commandFlags("client-key upload"), args, 1, 1, "client-key upload FILE")
	if err != nil {
		return err
	}
	data, err := readLimited(rest[0], maxClientKeyFile)
	if err != nil {
		return err
	}
	der, err := clientKeyDER(data)
	if err != nil {
		return fmt.Errorf("%s: %w", rest[0], err)
	}
	return c.send(http.MethodPost, apiPath("client-key"), der, "application/octet-stream", &info, func() {
		fmt.Fprintf(c.stdout, "installed the client key from %s\n", rest[0])
		print()
	})
}

// clientKeyDER returns the DER of a public key file: DER as it is, or the
// bytes of a PEM PUBLIC KEY (SubjectPublicKeyInfo) or RSA PUBLIC KEY
// (PKCS#1) block. Whether it is a 2048-bit RSA key is the server's to say.
func clientKeyDER(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return data, nil
	}
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no PEM PUBLIC KEY or RSA PUBLIC KEY block")
		}
		if block.Type == "PUBLIC KEY" || block.Type == "RSA PUBLIC KEY" {
			return block.Bytes, nil
		}
	}
}
