package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

// scanPollInterval is how often scan asks for the progress of its scan.
var scanPollInterval = 500 * time.Millisecond

// scanPollSlack is how long scan keeps polling past the scan's own timeout
// before it gives up on the server.
const scanPollSlack = 30 * time.Second

// discoveredDevice is a device found by a scan, as the API sends it.
type discoveredDevice struct {
	Address     string          `json:"address"`
	HostIDs     []hostid.HostID `json:"hostIds"`
	Alias       string          `json:"alias"`
	Onboarded   bool            `json:"onboarded"`
	Fingerprint string          `json:"fingerprint"`
	Here        bool            `json:"here"`
	LastSeen    string          `json:"lastSeen"`
	Online      bool            `json:"online"`
}

// scanProgress is the progress of a scan; durations are in seconds.
type scanProgress struct {
	Targets  int     `json:"targets"`
	Sent     int     `json:"sent"`
	Failed   int     `json:"failed"`
	Answered int     `json:"answered"`
	Started  string  `json:"started"`
	Elapsed  float64 `json:"elapsed"`
	Timeout  float64 `json:"timeout"`
	Done     bool    `json:"done"`
}

type scanStatus struct {
	Progress *scanProgress `json:"progress"`
	Found    int           `json:"found"`
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var _ flag.Value = (*stringList)(nil)

func printDiscovered(c *cli, items []discoveredDevice) {
	rows := make([][]string, 0, len(items))
	for _, d := range items {
		ids := make([]string, 0, len(d.HostIDs))
		for _, h := range d.HostIDs {
			ids = append(ids, h.Value+" ("+h.Type.String()+")")
		}
		onboarded := yesNo(d.Onboarded)
		if d.Here {
			onboarded = "here"
		}
		rows = append(rows, []string{d.Address, dash(strings.Join(ids, ", ")), dash(d.Alias), onboarded, dash(d.LastSeen), yesNo(d.Online)})
	}
	table(c.stdout, "ADDRESS\tHOSTIDS\tALIAS\tONBOARDED\tLAST-SEEN\tONLINE", rows)
}

// scan starts a scan, reports its progress on stderr until it is done and
// prints the discovered devices.
func (c *cli) scan(args []string) error {
	fs := c.commandFlags("scan")
	var targets stringList
	var timeout time.Duration
	fs.Var(&targets, "target", "")
	fs.DurationVar(&timeout, "timeout", 0, "")
	if _, err := parseArgs(fs, args, 0, 0, "scan [--target CIDR|IP[:PORT]]... [--timeout D]"); err != nil {
		return err
	}
	req := map[string]any{}
	if len(targets) > 0 {
		req["targets"] = []string(targets)
	}
	if timeout < 0 {
		return usageError("--timeout must be above 0")
	}
	if timeout > 0 {
		req["timeoutSeconds"] = timeout.Seconds()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	raw, err := api.do(ctx, request{method: http.MethodPost, path: apiPath("discovery", "scan"), body: body, contentType: "application/json"})
	if err != nil {
		return err
	}
	var st scanStatus
	if err := decodeResponse("discovery/scan", raw, &st); err != nil {
		return err
	}
	limit := discoveryDefaultTimeout + scanPollSlack
	if st.Progress != nil {
		limit = time.Duration(st.Progress.Timeout*float64(time.Second)) + scanPollSlack
	}
	start := c.now()
	for st.Progress == nil || !st.Progress.Done {
		if c.now().Sub(start) > limit {
			return errors.New("the scan did not end in time")
		}
		time.Sleep(scanPollInterval)
		raw, err := api.do(ctx, request{method: http.MethodGet, path: apiPath("discovery", "scan")})
		if err != nil {
			return err
		}
		if err := decodeResponse("discovery/scan", raw, &st); err != nil {
			return err
		}
		if p := st.Progress; p != nil {
			fmt.Fprintf(c.stderr, "scan: %d of %d sent, %d failed, %d answered, %.1fs of %.1fs\n",
				p.Sent, p.Targets, p.Failed, p.Answered, p.Elapsed, p.Timeout)
		}
	}
	return c.listDiscovered(url.Values{"pageSize": {strconv.Itoa(maxPageSize)}}, true)
}

// discoveryDefaultTimeout is the server's default scan timeout.
const discoveryDefaultTimeout = 6 * time.Second

func (c *cli) discovered(args []string) error {
	fs := c.commandFlags("discovered")
	var pf pageFlags
	pf.add(fs)
	if _, err := parseArgs(fs, args, 0, 0, "discovered [--page P] [--page-size S]"); err != nil {
		return err
	}
	q, err := pf.query()
	if err != nil {
		return err
	}
	return c.listDiscovered(q, false)
}

func (c *cli) listDiscovered(q url.Values, afterScan bool) error {
	var p page[discoveredDevice]
	return c.get(apiPath("discovery", "devices"), q, &p, func() {
		printDiscovered(c, p.Items)
		if afterScan {
			fmt.Fprintf(c.stdout, "%d discovered devices\n", p.Total)
			return
		}
		c.footer("discovered devices", len(p.Items), p.Total, p.Page)
	})
}

func (c *cli) ping(args []string) error {
	if _, err := parseArgs(c.commandFlags("ping"), args, 0, 0, "ping"); err != nil {
		return err
	}
	var res struct {
		Total  int                `json:"total"`
		Online int                `json:"online"`
		Items  []discoveredDevice `json:"items"`
	}
	return c.send(http.MethodPost, apiPath("discovery", "ping"), nil, "", &res, func() {
		printDiscovered(c, res.Items)
		fmt.Fprintf(c.stdout, "%d of %d discovered devices online\n", res.Online, res.Total)
	})
}

// deviceArgs reads the device of wake and onboard: a MAC alone, or a
// hostid type and value; it returns the request body too.
func (c *cli) deviceArgs(command string, args []string) (hostid.HostID, []byte, error) {
	usage := command + " MAC | " + command + " TYPE VALUE"
	rest, err := parseArgs(c.commandFlags(command), args, 1, 2, usage)
	if err != nil {
		return hostid.HostID{}, nil, err
	}
	typ, value := "ETHERNET", rest[0]
	if len(rest) == 2 {
		typ, value = rest[0], rest[1]
	}
	id, err := hostid.Parse(value, typ)
	if err != nil {
		return hostid.HostID{}, nil, usageError("%s: %v", command, err)
	}
	body, err := json.Marshal(map[string]hostid.HostID{"device": id})
	return id, body, err
}

func (c *cli) wake(args []string) error {
	id, body, err := c.deviceArgs("wake", args)
	if err != nil {
		return err
	}
	if id.Type != hostid.Ethernet {
		return usageError("wake: only ETHERNET hostids can be woken, not %s", id.Type)
	}
	var res struct {
		Device  hostid.HostID `json:"device"`
		Targets []string      `json:"targets"`
		Failed  int           `json:"failed"`
	}
	return c.send(http.MethodPost, apiPath("discovery", "wake"), body, "application/json", &res, func() {
		fmt.Fprintf(c.stdout, "sent the magic packet for %s to %s\n", res.Device.Value, strings.Join(res.Targets, ", "))
		if res.Failed > 0 {
			fmt.Fprintf(c.stdout, "%d of %d sends failed\n", res.Failed, len(res.Targets))
		}
	})
}

// onboard invites a discovered device to onboard: the server makes a
// one-time key bound to it and sends the key in a signed INVITE.
func (c *cli) onboard(args []string) error {
	_, body, err := c.deviceArgs("onboard", args)
	if err != nil {
		return err
	}
	var res struct {
		Device hostid.HostID `json:"device"`
		Key    string        `json:"key"`
		SentTo string        `json:"sentTo"`
	}
	return c.send(http.MethodPost, apiPath("discovery", "onboard"), body, "application/json", &res, func() {
		fmt.Fprintf(c.stdout, "invited %s %s at %s with one-time key %s\n", res.Device.Type, res.Device.Value, res.SentTo, res.Key)
	})
}
