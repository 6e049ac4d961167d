package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

// maxResponseFile bounds a capability response file tallyctl uploads.
const maxResponseFile = 4 << 20

// offline is the offline capability exchange: a request file to carry to
// the back office, and its response file to upload.
func (c *cli) offline(args []string) error {
	sub, args, err := subcommand("offline", args, "request", "activate", "upload")
	if err != nil {
		return err
	}
	switch sub {
	case "request":
		fs := c.commandFlags("offline request")
		var out string
		fs.StringVar(&out, "out", "", "")
		if _, err := parseArgs(fs, args, 0, 0, "offline request --out FILE"); err != nil {
			return err
		}
		if out == "" {
			return usageError("usage: tallyctl offline request --out FILE")
		}
		return c.saveRequest(request{method: http.MethodGet, path: apiPath("offline", "request")}, out)
	case "activate":
		fs := c.commandFlags("offline activate")
		var out, id string
		var count int64
		fs.StringVar(&out, "out", "", "")
		fs.StringVar(&id, "id", "", "")
		fs.Int64Var(&count, "count", -1, "")
		const shape = "offline activate --id ACTIVATION-ID --count N --out FILE"
		if _, err := parseArgs(fs, args, 0, 0, shape); err != nil {
			return err
		}
		if out == "" || id == "" || count < 0 {
			return usageError("usage: tallyctl %s (--count 0 gives the counts back)", shape)
		}
		body, err := json.Marshal(map[string]any{"activationId": id, "count": count})
		if err != nil {
			return err
		}
		return c.saveRequest(request{method: http.MethodPost, path: apiPath("offline", "activation"), body: body, contentType: "application/json"}, out)
	default: // upload
		rest, err := parseArgs(c.commandFlags("offline upload"), args, 1, 1, "offline upload RESPONSE-FILE")
		if err != nil {
			return err
		}
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(f, maxResponseFile+1))
		f.Close()
		if err != nil {
			return err
		}
		if len(data) > maxResponseFile {
			return fmt.Errorf("%s is larger than a capability response can be (%d bytes)", rest[0], maxResponseFile)
		}
		var res struct {
			Sequence, RequestSequence, UsageAck uint64
			Lines                               int
			Activations                         []struct {
				ActivationID string
				Count        int64
				Result       string
			}
		}
		return c.send(http.MethodPost, apiPath("offline", "response"), data, "application/octet-stream", &res, func() {
			fmt.Fprintf(c.stdout, "installed response %d to request %d: %d lines; usage acknowledged up to window %d\n",
				res.Sequence, res.RequestSequence, res.Lines, res.UsageAck)
			for _, a := range res.Activations {
				fmt.Fprintf(c.stdout, "activation %s (%d): %s\n", a.ActivationID, a.Count, a.Result)
			}
		})
	}
}

// saveRequest fetches a capability request and writes it to out.
func (c *cli) saveRequest(r request, out string) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	data, err := api.do(context.Background(), r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	if c.opts.json {
		return c.encodeJSON(map[string]any{"file": out, "bytes": len(data)})
	}
	fmt.Fprintf(c.stdout, "wrote the capability request to %s: take it to the back office, then tallyctl offline upload its response\n", out)
	return nil
}
