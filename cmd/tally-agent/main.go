// Command tally-agent is a device agent for the Tally device protocol
// (tally-device/1): it says hello to a server, onboards the device with a
// first-authentication key, checks features out, renews and returns them,
// shows what the device holds, and with load runs many simulated devices
// to measure a server.
//
//	tally-agent [--server wss://HOST:8443] [--ca FILE | --fingerprint FP | --insecure]
//	            [--identity FP] [--hostid VALUE --hostid-type TYPE --alias A]
//	            [--key-file FILE] [--json] COMMAND
//
//	hello                         say hello and show the welcome
//	onboard --key KEY             onboard the device; prints its device ID
//	checkout NAME VERSION COUNT   hold COUNT of a feature (a denial exits 1)
//	renew NAME VERSION COUNT      renew a lease at COUNT
//	return NAME [VERSION]         return a feature (every version held without VERSION)
//	status                        list the leases the server records
//	load --devices N --duration D [--feature NAME --version V] [--onboard-key KEY]
//
// --fingerprint pins the server's TLS certificate by its SHA-256 (colon hex,
// as openssl prints it) instead of validating it against CAs; --identity
// pins the licensing identity that signs responses. The device is a STRING
// hostid, by default the host name.
//
// The device key (--key-file, default $HOME/.tally-agent/HOSTID.key, PKCS#8
// PEM) is made on the first onboard and saved with mode 0600; every other
// command authenticates with it when the server says the device is
// onboarded. load --onboard-key onboards each simulated device with the
// key, using a device key made in memory.
//
// Every failure exits non-zero with a one-line reason on standard error.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
