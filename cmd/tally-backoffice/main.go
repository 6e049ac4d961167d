// Command tally-backoffice is the reference back office of a Tally
// producer: it keeps entitlements (activation IDs with counts of a feature
// version), the licensing-ID certificates of the servers it serves, and
// the usage they report, and answers their capability requests with
// responses signed by the producer key, over HTTPS (for the http
// connector) or as files (for the dir connector and manual offline
// exchange).
//
//	tally-backoffice [--data DIR] COMMAND
//	  serve --key PRODUCER.key [--addr :9443] [--tls-cert F --tls-key F]
//	  product add --name P --line FEATURE:VERSION[:COUNT]...
//	  entitlement add --id ACT (--product P | --feature NAME --version V) --count N [--expiry YYYY-MM-DD]
//	  products | entitlements | servers | usage
//	  register CERT-FILE
//	  answer --key PRODUCER.key --in REQUEST.bin --out RESPONSE.bin
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const usage = `usage: tally-backoffice [--data DIR] COMMAND
  serve --key PRODUCER.key [--addr :9443] [--tls-cert F --tls-key F]
  product add --name P --line FEATURE:VERSION[:COUNT]...
  entitlement add --id ACT (--product P | --feature NAME --version V) --count N [--expiry YYYY-MM-DD]
  products | entitlements | servers | usage
  register CERT-FILE
  answer --key PRODUCER.key --in REQUEST.bin --out RESPONSE.bin`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command line that cannot be run.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tally-backoffice: %v\n%s\n", err, usage)
		return 2
	}
	fmt.Fprintf(stderr, "tally-backoffice: %v\n", err)
	return 1
}

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tally-backoffice", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", "./backoffice-data", "")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if fs.NArg() == 0 {
		return usageErr("no command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	s, err := openStore(*data)
	if err != nil {
		return err
	}
	defer s.close()
	switch cmd {
	case "serve":
		return cmdServe(s, rest, stdout, stderr)
	case "entitlement":
		return cmdEntitlement(s, rest, stdout)
	case "product":
		return cmdProduct(s, rest, stdout)
	case "products":
		ps, err := s.products()
		if err != nil {
			return err
		}
		for _, p := range ps {
			var lines []string
			for _, l := range p.Lines {
				lines = append(lines, fmt.Sprintf("%s %s x%d", l.Feature, l.Version, l.Count))
			}
			fmt.Fprintf(stdout, "%s: %s\n", p.Name, strings.Join(lines, ", "))
		}
		return nil
	case "entitlements":
		ents, err := s.entitlements()
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ACTIVATION ID\tFEATURE\tVERSION\tCOUNT\tFREE\tEXPIRY\tHELD BY")
		for _, e := range ents {
			var held []string
			for fp, n := range e.Allocated {
				held = append(held, fmt.Sprintf("%s…=%d", fp[:min(len(fp), 11)], n))
			}
			feature, version := e.Feature, e.Version
			if e.Product != "" {
				feature, version = "product "+e.Product, "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", e.ActivationID, feature, version, e.Count, e.free(), dash(e.Expiry), dash(strings.Join(held, " ")))
		}
		return w.Flush()
	case "servers":
		srvs, err := s.servers()
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "LICENSING ID FINGERPRINT\tREGISTERED\tRESPONSES\tUSAGE WINDOWS\tLAST SEEN")
		for _, srv := range srvs {
			seen := "-"
			if !srv.LastSeen.IsZero() {
				seen = srv.LastSeen.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", srv.Fingerprint, srv.Registered.Format(time.RFC3339), srv.ResponseSequence, srv.UsageAck, seen)
		}
		return w.Flush()
	case "usage":
		recs, err := s.usage()
		if err != nil {
			return err
		}
		for _, u := range recs {
			fmt.Fprintf(stdout, "%s window %d received %s: %s\n", u.Server, u.Window, u.Received.Format(time.RFC3339), u.Body)
		}
		return nil
	case "register":
		if len(rest) != 1 {
			return usageErr("register CERT-FILE")
		}
		fp, err := registerFile(s, rest[0], time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registered licensing ID %s\n", fp)
		return nil
	case "answer":
		return cmdAnswer(s, rest, stdout)
	}
	return usageErr("unknown command %q", cmd)
}

func cmdEntitlement(s *store, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return usageErr("entitlement add --id ACT --feature NAME --version V --count N [--expiry YYYY-MM-DD]")
	}
	fs := flag.NewFlagSet("entitlement add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var e entitlement
	fs.StringVar(&e.ActivationID, "id", "", "")
	fs.StringVar(&e.Product, "product", "", "")
	fs.StringVar(&e.Feature, "feature", "", "")
	fs.StringVar(&e.Version, "version", "", "")
	fs.Int64Var(&e.Count, "count", 0, "")
	fs.StringVar(&e.Expiry, "expiry", "", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return usageErr("entitlement add --id ACT (--product P | --feature NAME --version V) --count N [--expiry YYYY-MM-DD]")
	}
	if err := s.addEntitlement(e); err != nil {
		return err
	}
	what := e.Feature + " " + e.Version
	if e.Product != "" {
		what = "product " + e.Product
	}
	fmt.Fprintf(stdout, "added %s: %d of %s\n", e.ActivationID, e.Count, what)
	return nil
}

// cmdProduct adds a product: feature lines with the count one unit brings.
func cmdProduct(s *store, args []string, stdout io.Writer) error {
	const shape = "product add --name P --line FEATURE:VERSION[:COUNT]..."
	if len(args) == 0 || args[0] != "add" {
		return usageErr(shape)
	}
	fs := flag.NewFlagSet("product add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var p product
	fs.StringVar(&p.Name, "name", "", "")
	fs.Func("line", "", func(v string) error {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return fmt.Errorf("--line %q: want FEATURE:VERSION[:COUNT]", v)
		}
		l := productLine{Feature: parts[0], Version: parts[1], Count: 1}
		if len(parts) == 3 {
			n, err := strconv.ParseInt(parts[2], 10, 64)
			if err != nil {
				return fmt.Errorf("--line %q: count %q", v, parts[2])
			}
			l.Count = n
		}
		p.Lines = append(p.Lines, l)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return usageErr("%s: %v", shape, err)
	}
	if err := s.addProduct(p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added product %s with %d lines\n", p.Name, len(p.Lines))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
