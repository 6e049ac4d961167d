package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// demoLines are the demo producer's rights: a counted CAD seat with
// overdraft, a viewer for everyone, a metered export, and a simulator
// licence that expires in thirty days.
func demoLines(now time.Time) []core.FeatureLine {
	return []core.FeatureLine{
		{ID: "demo-cad", Name: "cad", Version: version.MustParse("2.0"), Count: 10, Overdraft: 2, VendorString: "edition=pro"},
		{ID: "demo-viewer", Name: "viewer", Version: version.MustParse("1.0"), Uncounted: true},
		{ID: "demo-export", Name: "export", Version: version.MustParse("1.0"), Count: 100, Metered: true, UndoInterval: 10 * time.Minute},
		{ID: "demo-sim", Name: "sim", Version: version.MustParse("2022.01"), Count: 5, Expiry: now.Add(30 * 24 * time.Hour).Truncate(time.Hour)},
	}
}

// runDemo loads the demo rights and lets three devices check out.
func runDemo(now time.Time) (*core.State, error) {
	s := core.New(core.Config{})
	var seq uint64
	apply := func(c core.Command) (core.Result, error) {
		seq++
		return s.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: seq}, At: now, Command: c})
	}
	if _, err := apply(&core.LoadRights{Source: "demo", Sequence: 1, Lines: demoLines(now)}); err != nil {
		return nil, err
	}
	checkouts := []struct {
		feature, version string
		count            int64
	}{{"cad", "1.0", 4}, {"viewer", "1.0", 1}, {"sim", "2022.01", 2}}
	for i, alias := range []string{"press-line-1", "press-line-2", "lab-bench"} {
		id := hostid.HostID{Value: fmt.Sprintf("02:00:5e:00:00:%02x", i+1), Type: hostid.Ethernet}
		if _, err := apply(&core.Hello{Device: core.DeviceInfo{ID: id, Type: core.DevicePhysical, Alias: alias}}); err != nil {
			return nil, err
		}
		c := checkouts[i]
		res, err := apply(&core.Checkout{Device: id, Feature: c.feature, Version: version.MustParse(c.version), Count: c.count})
		if err != nil {
			return nil, err
		}
		if res.Denied != core.NotDenied {
			return nil, fmt.Errorf("demo checkout of %s denied: %s", c.feature, res.Denied)
		}
	}
	return s, nil
}

func printFeatures(out io.Writer, rows []core.FeatureSummary) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FEATURE\tVERSION\tTOTAL\tUSED\tAVAILABLE\tFIRST EXPIRY\tLAST EXPIRY\tOVERDRAFT\tMETERED\tCOUNTED")
	for _, f := range rows {
		total, avail := strconv.FormatInt(f.Total, 10), strconv.FormatInt(f.Available, 10)
		if !f.Counted {
			total, avail = "uncounted", "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%t\t%t\n", f.Name, f.Version, total, f.Used, avail,
			date(f.FirstExpiry, "-"), date(f.LastExpiry, "permanent"), f.Overdraft, f.Metered, f.Counted)
	}
	w.Flush()
}

func printDevices(out io.Writer, rows []core.DeviceSummary) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE ID\tID TYPE\tDEVICE TYPE\tALIAS\tDEVICE EXPIRY")
	for _, d := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.ID.Value, d.ID.Type, d.Type, d.Alias, date(d.Expiry, "-"))
	}
	w.Flush()
}

func date(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Format("2006-01-02 15:04")
}
