package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/rights"
)

// maxPageSize is the largest page the API serves.
const maxPageSize = 1000

// client returns the API client, made on first use so that the producer
// commands never need a server or a password.
func (c *cli) client() (*client, error) {
	if c.api != nil {
		return c.api, nil
	}
	api, err := newClient(c.opts.server, c.opts.ca, c.opts.insecure, c.opts.user, c.password)
	if err != nil {
		return nil, err
	}
	c.api = api
	return api, nil
}

// password reads --password-file, or TALLY_PASSWORD.
func (c *cli) password() (string, error) {
	if c.opts.passwordFile != "" {
		return readPasswordFile(c.opts.passwordFile)
	}
	if p := c.getenv("TALLY_PASSWORD"); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("no password for %s: give --password-file FILE or set TALLY_PASSWORD", c.opts.user)
}

// get fetches a resource into out and prints it: the server's JSON with
// --json, or what table makes of out.
func (c *cli) get(path string, query url.Values, out any, table func()) error {
	return c.fetch(request{method: http.MethodGet, path: path, query: query}, out, table)
}

// send makes a change and decodes the answer, if any, into out. With --json
// the server's answer is printed as is (nothing when it sent none);
// otherwise done prints a line for people.
func (c *cli) send(method, path string, body []byte, contentType string, out any, done func()) error {
	return c.fetch(request{method: method, path: path, body: body, contentType: contentType}, out, done)
}

// fetch makes a request and prints its answer as get and send say.
func (c *cli) fetch(r request, out any, print func()) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	raw, err := api.do(context.Background(), r)
	if err != nil {
		return err
	}
	if err := decodeResponse(r.path, raw, out); err != nil {
		return err
	}
	if !c.opts.json {
		print()
		return nil
	}
	if len(raw) == 0 {
		return nil
	}
	return c.printJSON(raw)
}

// printJSON writes the server's JSON indented.
func (c *cli) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

// encodeJSON writes a value as indented JSON.
func (c *cli) encodeJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// page is a page of a list.
type page[T any] struct {
	Total    int `json:"total"`
	Page     int `json:"page"`
	PageSize int `json:"pageSize"`
	Items    []T `json:"items"`
}

// pageFlags adds --page and --page-size to a command.
type pageFlags struct{ page, size int }

func (p *pageFlags) add(fs *flag.FlagSet) {
	fs.IntVar(&p.page, "page", 0, "")
	fs.IntVar(&p.size, "page-size", 0, "")
}

// query checks the flags and returns them as API query parameters.
func (p *pageFlags) query() (url.Values, error) {
	q := url.Values{}
	if p.page < 0 {
		return nil, usageError("--page must be 1 or more")
	}
	if p.size < 0 || p.size > maxPageSize {
		return nil, usageError("--page-size must be between 1 and %d", maxPageSize)
	}
	if p.page > 0 {
		q.Set("page", strconv.Itoa(p.page))
	}
	if p.size > 0 {
		q.Set("pageSize", strconv.Itoa(p.size))
	}
	return q, nil
}

// footer says which part of a list a page shows.
func (c *cli) footer(what string, shown, total, page int) {
	if page == 0 {
		page = 1
	}
	fmt.Fprintf(c.stdout, "%d of %d %s (page %d)\n", shown, total, what, page)
}

func (c *cli) health(args []string) error {
	if _, err := parseArgs(c.commandFlags("health"), args, 0, 0, "health"); err != nil {
		return err
	}
	var h struct {
		Status      string `json:"status"`
		Version     string `json:"version"`
		Node        string `json:"node"`
		Fingerprint string `json:"fingerprint"`
		Leader      bool   `json:"leader"`
		Time        string `json:"time"`
	}
	return c.fetch(request{method: http.MethodGet, path: apiPath("health"), noAuth: true}, &h, func() {
		printFields(c.stdout, [][2]string{
			{"Status", h.Status}, {"Version", h.Version}, {"Node", h.Node},
			{"Leader", strconv.FormatBool(h.Leader)}, {"Fingerprint", h.Fingerprint}, {"Time", h.Time},
		})
	})
}

func (c *cli) features(args []string) error {
	if len(args) > 0 && args[0] == "show" {
		rest, err := parseArgs(c.commandFlags("features show"), args[1:], 2, 2, "features show NAME VERSION")
		if err != nil {
			return err
		}
		var d core.FeatureDetail
		return c.get(apiPath("features", rest[0], rest[1]), nil, &d, func() { printFeatureDetail(c.stdout, d) })
	}
	fs := c.commandFlags("features")
	var name string
	var pf pageFlags
	fs.StringVar(&name, "name", "", "")
	pf.add(fs)
	if _, err := parseArgs(fs, args, 0, 0, "features [--name N] [--page P --page-size S] | features show NAME VERSION"); err != nil {
		return err
	}
	q, err := pf.query()
	if err != nil {
		return err
	}
	if name != "" {
		q.Set("name", name)
	}
	var p page[core.FeatureSummary]
	return c.get(apiPath("features"), q, &p, func() {
		printFeatures(c.stdout, p.Items)
		c.footer("features", len(p.Items), p.Total, p.Page)
	})
}

func (c *cli) devices(args []string) error {
	if len(args) > 0 && (args[0] == "show" || args[0] == "drop") {
		sub := args[0]
		rest, err := parseArgs(c.commandFlags("devices "+sub), args[1:], 2, 2, "devices "+sub+" TYPE VALUE")
		if err != nil {
			return err
		}
		id, err := hostid.Parse(rest[1], rest[0])
		if err != nil {
			return usageError("%v", err)
		}
		path := apiPath("devices", id.Type.String(), id.Value)
		if sub == "show" {
			var d core.DeviceDetail
			return c.get(path, nil, &d, func() { printDeviceDetail(c.stdout, d) })
		}
		return c.send(http.MethodDelete, path, nil, "", nil, func() {
			fmt.Fprintf(c.stdout, "dropped device %s\n", id)
		})
	}
	fs := c.commandFlags("devices")
	var pf pageFlags
	pf.add(fs)
	if _, err := parseArgs(fs, args, 0, 0, "devices [--page P --page-size S] | devices {show,drop} TYPE VALUE"); err != nil {
		return err
	}
	q, err := pf.query()
	if err != nil {
		return err
	}
	var p page[deviceRow]
	return c.get(apiPath("devices"), q, &p, func() {
		printDevices(c.stdout, p.Items)
		c.footer("devices", len(p.Items), p.Total, p.Page)
	})
}

func (c *cli) reservations(args []string) error {
	sub, args, err := subcommand("reservations", args, "list", "import", "export", "delete")
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		fs := c.commandFlags("reservations list")
		var pf pageFlags
		pf.add(fs)
		if _, err := parseArgs(fs, args, 0, 0, "reservations list [--page P --page-size S]"); err != nil {
			return err
		}
		q, err := pf.query()
		if err != nil {
			return err
		}
		var p page[core.ReservationRow]
		return c.get(apiPath("reservations"), q, &p, func() {
			printReservations(c.stdout, p.Items)
			c.footer("reservation entries", len(p.Items), p.Total, p.Page)
		})
	case "import":
		rest, err := parseArgs(c.commandFlags("reservations import"), args, 1, 1, "reservations import FILE")
		if err != nil {
			return err
		}
		data, err := os.ReadFile(rest[0])
		if err != nil {
			return err
		}
		groups, err := core.ParseReservations(data)
		if err != nil {
			return fmt.Errorf("%s: %w", rest[0], err)
		}
		return c.send(http.MethodPost, apiPath("reservations"), data, "application/json", nil, func() {
			fmt.Fprintf(c.stdout, "imported %d reservation groups\n", len(groups))
		})
	case "export":
		rest, err := parseArgs(c.commandFlags("reservations export"), args, 0, 1, "reservations export [FILE]")
		if err != nil {
			return err
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		data, err := api.do(context.Background(), request{method: http.MethodGet, path: apiPath("reservations", "export")})
		if err != nil {
			return err
		}
		groups, err := core.ParseReservations(data)
		if err != nil {
			return fmt.Errorf("the server's export does not read back: %w", err)
		}
		if len(rest) == 0 {
			_, err = c.stdout.Write(withNewline(data))
			return err
		}
		if err := os.WriteFile(rest[0], withNewline(data), 0o644); err != nil {
			return err
		}
		if !c.opts.json {
			fmt.Fprintf(c.stdout, "exported %d reservation groups to %s\n", len(groups), rest[0])
		}
		return nil
	default: // delete
		rest, err := parseArgs(c.commandFlags("reservations delete"), args, 1, -1, "reservations delete GROUP...")
		if err != nil {
			return err
		}
		for _, g := range rest {
			if err := c.send(http.MethodDelete, apiPath("reservations", g), nil, "", nil, func() {
				fmt.Fprintf(c.stdout, "deleted reservation group %q\n", g)
			}); err != nil {
				return fmt.Errorf("delete group %q: %w", g, err)
			}
		}
		return nil
	}
}

func (c *cli) model(args []string) error {
	sub, args, err := subcommand("model", args, "get", "upload", "delete")
	if err != nil {
		return err
	}
	switch sub {
	case "get":
		if _, err := parseArgs(c.commandFlags("model get"), args, 0, 0, "model get"); err != nil {
			return err
		}
		var m struct {
			Text string `json:"text"`
		}
		return c.get(apiPath("model"), nil, &m, func() {
			if m.Text == "" {
				fmt.Fprintln(c.stderr, "no license model is set")
				return
			}
			c.stdout.Write(withNewline([]byte(m.Text)))
		})
	case "upload":
		rest, err := parseArgs(c.commandFlags("model upload"), args, 1, 1, "model upload FILE")
		if err != nil {
			return err
		}
		text, err := os.ReadFile(rest[0])
		if err != nil {
			return err
		}
		return c.send(http.MethodPut, apiPath("model"), text, "text/plain; charset=utf-8", nil, func() {
			fmt.Fprintf(c.stdout, "installed the license model from %s\n", rest[0])
		})
	default: // delete
		if _, err := parseArgs(c.commandFlags("model delete"), args, 0, 0, "model delete"); err != nil {
			return err
		}
		return c.send(http.MethodDelete, apiPath("model"), nil, "", nil, func() {
			fmt.Fprintln(c.stdout, "deleted the license model")
		})
	}
}

func (c *cli) pools(args []string) error {
	if _, err := parseArgs(c.commandFlags("pools"), args, 0, 0, "pools"); err != nil {
		return err
	}
	var p page[core.PoolSummary]
	return c.get(apiPath("pools"), nil, &p, func() { printPools(c.stdout, p.Items) })
}

// property is core.Property as the API sends it; the kind is its name.
type property struct {
	core.Property
	Kind string `json:"kind"`
}

func (c *cli) properties(args []string) error {
	sub, args, err := subcommand("properties", args, "get", "set")
	if err != nil {
		return err
	}
	if sub == "set" {
		rest, err := parseArgs(c.commandFlags("properties set"), args, 2, 2, "properties set NAME VALUE")
		if err != nil {
			return err
		}
		body, err := json.Marshal(map[string]string{"value": rest[1]})
		if err != nil {
			return err
		}
		var p property
		return c.send(http.MethodPut, apiPath("properties", rest[0]), body, "application/json", &p, func() {
			fmt.Fprintf(c.stdout, "%s = %s\n", p.Name, p.Value)
		})
	}
	rest, err := parseArgs(c.commandFlags("properties get"), args, 0, 1, "properties get [NAME]")
	if err != nil {
		return err
	}
	if len(rest) == 1 {
		var p property
		return c.get(apiPath("properties", rest[0]), nil, &p, func() { printProperty(c.stdout, p) })
	}
	var p page[property]
	return c.get(apiPath("properties"), nil, &p, func() { printProperties(c.stdout, p.Items) })
}

func (c *cli) rights(args []string) error {
	_, args, err := subcommand("rights", args, "load")
	if err != nil {
		return err
	}
	rest, err := parseArgs(c.commandFlags("rights load"), args, 1, 1, "rights load FILE")
	if err != nil {
		return err
	}
	data, err := readLimited(rest[0], rights.MaxFileBytes)
	if err != nil {
		return err
	}
	var loaded struct {
		Source   string `json:"source"`
		Sequence uint64 `json:"sequence"`
		Lines    int    `json:"lines"`
	}
	return c.send(http.MethodPost, apiPath("rights"), data, "application/json", &loaded, func() {
		fmt.Fprintf(c.stdout, "loaded %d lines from %q at sequence %d\n", loaded.Lines, loaded.Source, loaded.Sequence)
	})
}

// readLimited reads a file that must not exceed limit bytes.
func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

func withNewline(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return b
	}
	return append(b, '\n')
}
