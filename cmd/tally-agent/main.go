// Command tally-agent is a device agent for the Tally device protocol
// (tally-device/1): it says hello to a server, checks features out, renews
// and returns them, shows what the device holds, and with load runs many
// simulated devices to measure a server.
//
//	tally-agent [--server wss://HOST:8443] [--ca FILE | --fingerprint FP | --insecure]
//	            [--identity FP] [--hostid VALUE --hostid-type TYPE --alias A] [--json] COMMAND
//
//	hello                         say hello and show the welcome
//	checkout NAME VERSION COUNT   hold COUNT of a feature (a denial exits 1)
//	renew NAME VERSION COUNT      renew a lease at COUNT
//	return NAME [VERSION]         return a feature (every version held without VERSION)
//	status                        list the leases the server records
//	load --devices N --duration D [--feature NAME --version V]
//
// --fingerprint pins the server's TLS certificate by its SHA-256 (colon hex,
// as openssl prints it) instead of validating it against CAs; --identity
// pins the licensing identity that signs responses. The device is a STRING
// hostid, by default the host name. Every failure exits non-zero with a
// one-line reason on standard error.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
