package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tallyhq/tally/core"
)

// table writes tab-separated rows aligned in columns.
func table(out io.Writer, header string, rows [][]string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

// printFields writes "Name: value" pairs aligned.
func printFields(out io.Writer, fields [][2]string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(w, "%s:\t%s\n", f[0], f[1])
	}
	return w.Flush()
}

// date writes a day, or none when t is zero.
func date(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02")
}

// stamp writes an instant in UTC, or none when t is zero.
func stamp(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// dash writes "-" for empty text, so that columns stay aligned.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// counts writes total and available of a feature; uncounted ones have none.
func counts(f core.FeatureSummary) (total, available string) {
	if !f.Counted {
		return "uncounted", "-"
	}
	return itoa(f.Total), itoa(f.Available)
}

func printFeatures(out io.Writer, items []core.FeatureSummary) {
	rows := make([][]string, 0, len(items))
	for _, f := range items {
		total, available := counts(f)
		rows = append(rows, []string{f.Name, f.Version.String(), total, itoa(f.Used), available,
			date(f.FirstExpiry, "permanent"), date(f.LastExpiry, "permanent"),
			itoa(f.Overdraft), yesNo(f.Metered), yesNo(f.Counted)})
	}
	table(out, "FEATURE\tVERSION\tTOTAL\tUSED\tAVAILABLE\tFIRST-EXPIRY\tLAST-EXPIRY\tOVERDRAFT\tMETERED\tCOUNTED", rows)
}

func printFeatureDetail(out io.Writer, d core.FeatureDetail) {
	total, available := counts(d.FeatureSummary)
	printFields(out, [][2]string{
		{"Feature", d.Name}, {"Version", d.Version.String()}, {"Start", date(d.Start, "-")},
		{"Total", total}, {"Used", itoa(d.Used)}, {"Available", available}, {"Reserved", itoa(d.Reserved)},
		{"Overdraft", fmt.Sprintf("%d (%d used)", d.Overdraft, d.OverdraftUsed)},
		{"First expiry", date(d.FirstExpiry, "permanent")}, {"Last expiry", date(d.LastExpiry, "permanent")},
		{"Metered", yesNo(d.Metered)}, {"Counted", yesNo(d.Counted)},
		{"Vendor strings", dash(strings.Join(d.VendorStrings, ", "))},
	})
	fmt.Fprintln(out, "\nLines:")
	rows := make([][]string, 0, len(d.Lines))
	for _, l := range d.Lines {
		count := itoa(l.Count)
		if l.Uncounted {
			count = "uncounted"
		}
		rows = append(rows, []string{l.ID, l.Source, count, itoa(l.Overdraft), date(l.Start, "-"),
			date(l.Expiry, "permanent"), yesNo(l.Metered), dash(l.VendorString)})
	}
	table(out, "ID\tSOURCE\tCOUNT\tOVERDRAFT\tSTART\tEXPIRY\tMETERED\tVENDOR", rows)
	fmt.Fprintln(out, "\nServed devices:")
	rows = rows[:0]
	for _, s := range d.Served {
		rows = append(rows, []string{s.Device.Value, s.Device.Type.String(), s.Type.String(), dash(s.Alias),
			itoa(s.Count), itoa(s.Overdraft), stamp(s.Expiry, "-")})
	}
	table(out, "DEVICE ID\tID TYPE\tDEVICE TYPE\tALIAS\tCOUNT\tOVERDRAFT\tEXPIRY", rows)
	if len(d.Pools) > 0 {
		fmt.Fprintln(out, "\nPools:")
		printPoolUse(out, d.Pools)
	}
}

// deviceRow is a row of the Devices view as the API sends it.
type deviceRow struct {
	core.DeviceSummary
	Online bool `json:"online"`
}

func printDevices(out io.Writer, items []deviceRow) {
	rows := make([][]string, 0, len(items))
	for _, d := range items {
		online := "offline"
		if d.Online {
			online = "online"
		}
		rows = append(rows, []string{d.ID.Value, d.ID.Type.String(), d.Type.String(), dash(d.Alias),
			online, dash(d.Pool), stamp(d.LastSeen, "-"), stamp(d.Expiry, "-")})
	}
	table(out, "DEVICE ID\tID TYPE\tDEVICE TYPE\tALIAS\tSTATE\tPOOL\tLAST SEEN\tDEVICE EXPIRY", rows)
}

func printDeviceDetail(out io.Writer, d core.DeviceDetail) {
	ids := make([]string, 0, len(d.Info.HostIDs))
	for _, h := range d.Info.HostIDs {
		ids = append(ids, h.String())
	}
	attrs := make([]string, 0, len(d.Info.Attributes))
	for k, v := range d.Info.Attributes {
		attrs = append(attrs, k+"="+v)
	}
	slices.Sort(attrs)
	printFields(out, [][2]string{
		{"Device ID", d.ID.Value}, {"ID type", d.ID.Type.String()}, {"Device type", d.Type.String()},
		{"Alias", dash(d.Alias)}, {"Hostname", dash(d.Info.Hostname)}, {"User", dash(d.Info.User)},
		{"Pool", dash(d.Pool)}, {"Last seen", stamp(d.LastSeen, "-")}, {"Device expiry", stamp(d.Expiry, "-")},
		{"Hostids", dash(strings.Join(ids, ", "))}, {"Attributes", dash(strings.Join(attrs, ", "))},
	})
	fmt.Fprintln(out, "\nLeases:")
	rows := make([][]string, 0, len(d.Leases))
	for _, l := range d.Leases {
		rows = append(rows, []string{l.Feature, l.Version.String(), itoa(l.Count), itoa(l.Overdraft),
			stamp(l.Granted, "-"), stamp(l.Expiry, "-")})
	}
	table(out, "FEATURE\tVERSION\tCOUNT\tOVERDRAFT\tGRANTED\tEXPIRY", rows)
}

func printReservations(out io.Writer, items []core.ReservationRow) {
	rows := make([][]string, 0, len(items))
	for _, r := range items {
		status := "satisfiable"
		if !r.Satisfiable {
			status = "unsatisfiable"
		}
		rows = append(rows, []string{status, r.HostID.Value, r.HostID.Type.String(), r.Group, r.Feature,
			r.Version.String(), itoa(r.Count)})
	}
	table(out, "STATUS\tDEVICE ID\tID TYPE\tGROUP\tFEATURE\tVERSION\tCOUNT", rows)
}

func printPools(out io.Writer, pools []core.PoolSummary) {
	rows := make([][]string, 0, len(pools))
	for _, p := range pools {
		if len(p.Features) == 0 {
			rows = append(rows, []string{strconv.Itoa(p.ID), p.Name, "-", "-", "-", "-", "-", "-"})
		}
		for _, f := range p.Features {
			rows = append(rows, []string{strconv.Itoa(p.ID), p.Name, f.Feature, f.Version.String(),
				date(f.Expiry, "permanent"), itoa(f.Allocated), itoa(f.Used), f.Status})
		}
	}
	table(out, "ID\tPOOL\tFEATURE\tVERSION\tEXPIRY\tALLOCATED\tUSED\tSTATUS", rows)
}

func printPoolUse(out io.Writer, uses []core.PoolFeatureUse) {
	rows := make([][]string, 0, len(uses))
	for _, u := range uses {
		rows = append(rows, []string{u.Pool, date(u.Expiry, "permanent"), itoa(u.Allocated), itoa(u.Used), u.Status})
	}
	table(out, "POOL\tEXPIRY\tALLOCATED\tUSED\tSTATUS", rows)
}

func printProperties(out io.Writer, items []property) {
	rows := make([][]string, 0, len(items))
	for _, p := range items {
		rows = append(rows, []string{p.Name, dash(p.Value), dash(p.Default), p.Kind, yesNo(p.Locked)})
	}
	table(out, "NAME\tVALUE\tDEFAULT\tKIND\tLOCKED", rows)
}

func printProperty(out io.Writer, p property) {
	fields := [][2]string{
		{"Name", p.Name}, {"Value", dash(p.Value)}, {"Default", dash(p.Default)}, {"Kind", p.Kind},
		{"Group", dash(p.Group)}, {"Locked", yesNo(p.Locked)}, {"Description", dash(p.Description)},
	}
	if p.Min != 0 || p.Max != 0 {
		fields = append(fields, [2]string{"Range", fmt.Sprintf("%d..%d", p.Min, p.Max)})
	}
	if len(p.Values) > 0 {
		fields = append(fields, [2]string{"Values", strings.Join(p.Values, ", ")})
	}
	printFields(out, fields)
}

func printUsers(out io.Writer, items []user) {
	rows := make([][]string, 0, len(items))
	for _, u := range items {
		rows = append(rows, []string{u.Name, strings.Join(u.Roles, ","), dash(u.Created), dash(u.PasswordChanged)})
	}
	table(out, "NAME\tROLES\tCREATED\tPASSWORD CHANGED", rows)
}

func printAudit(out io.Writer, items []core.AuditRecord) {
	rows := make([][]string, 0, len(items))
	for _, r := range items {
		rows = append(rows, []string{strconv.FormatUint(r.Seq, 10), stamp(r.At, "-"), r.User, dash(r.Address), r.Action, dash(r.Detail)})
	}
	table(out, "SEQ\tTIME\tUSER\tFROM\tACTION\tDETAIL", rows)
}

func printLicensingID(out io.Writer, st licensingIDStatus) {
	printFields(out, [][2]string{{"Licensing ID", st.Display}, {"Fingerprint", st.Fingerprint}})
	fmt.Fprintln(out, "\nServers:")
	rows := make([][]string, 0, len(st.Servers))
	for _, s := range st.Servers {
		rows = append(rows, []string{s.Host, s.ServerStatus, s.IDStatus, s.Display, s.Fingerprint})
	}
	table(out, "HOST\tSERVER STATUS\tID STATUS\tLICENSING ID\tFINGERPRINT", rows)
}
