// Command tallyd is the Tally license server daemon.
//
// In this release it runs the licensing engine in the foreground: with
// --dev it loads the demo rights, lets a few demo devices check out
// features, and prints the Features and Devices views.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// buildVersion is stamped at build time with -ldflags "-X main.buildVersion=…".
var buildVersion = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "tallyd:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer, now func() time.Time) error {
	if len(args) > 0 && args[0] == "version" {
		_, err := fmt.Fprintf(out, "tallyd %s\n", buildVersion)
		return err
	}
	fs := flag.NewFlagSet("tallyd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dev := fs.Bool("dev", false, "run with the demo producer's rights and demo devices")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w (usage: tallyd [--dev] | tallyd version)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (usage: tallyd [--dev] | tallyd version)", fs.Arg(0))
	}
	if !*dev {
		return errors.New("this release runs the engine with demo rights only: start it with --dev")
	}
	state, err := runDemo(now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Tally %s: licensing engine with the demo rights\n\n", buildVersion)
	printFeatures(out, state.Features())
	fmt.Fprintln(out)
	printDevices(out, state.Devices())
	return nil
}
