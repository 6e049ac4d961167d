// Command tally-agent is a device agent for the Tally device protocol
// (tally-device/1): it says hello to a server, onboards the device with a
// first-authentication key, checks features out, renews and returns them,
// shows what the device holds, and with load runs many simulated devices
// to measure a server.
//
//	tally-agent [--server wss://HOST:8443 | discover] [--ca FILE | --fingerprint FP | --insecure]
//	            [--identity FP] [--hostid VALUE --hostid-type TYPE --alias A]
//	            [--key-file FILE] [--target HOST[:PORT]]... [--discovery-port 30005]
//	            [--discovery-timeout D] [--json] COMMAND
//
//	hello                         say hello and show the welcome
//	onboard --key KEY             onboard the device; prints its device ID
//	checkout NAME VERSION COUNT   hold COUNT of a feature (a denial exits 1)
//	renew NAME VERSION COUNT      renew a lease at COUNT
//	return NAME [VERSION]         return a feature (every version held without VERSION)
//	status                        list the leases the server records
//	discover [--timeout D] [--mdns] [--target HOST[:PORT]]... [--discovery-port P]
//	                              find servers on the LAN (UDP DISCOVER, signed OFFER)
//	listen [--port 30005] [--bind IP] [--no-hw]
//	                              answer SCAN with PRESENT and PING with PONG
//	load --devices N --duration D [--feature NAME --version V] [--onboard-key KEY]
//
// discover sends DISCOVER to 255.255.255.255, each interface's directed
// broadcast and every --target, verifies each OFFER's signature and prints
// the offers, the leader's first. The licensing ID is pinned by --identity
// or, without it, on first use: the first verified fingerprint is saved to
// $HOME/.tally-agent/server.fingerprint and later runs accept only it.
// With --mdns it also browses _tally._tcp (fingerprints from TXT fp=, not
// verified). --server discover makes every command discover first and
// connect to the leader's endpoint, then the others, pinning the verified
// licensing ID in the device protocol; the OFFER does not carry the TLS
// certificate, so TLS is trusted as with any --server (--ca, --fingerprint,
// --insecure or the system roots). A fingerprint met for the first time
// is pinned once a connection with it succeeded.
//
// listen answers with the --hostid hostid first and then the machine's
// hardware hostids (from hw, unless --no-hw or unavailable), the alias,
// and whether the device is onboarded (its key file exists) and with
// which server (the pinned fingerprint), until SIGINT or SIGTERM.
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
